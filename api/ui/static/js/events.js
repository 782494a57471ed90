// Follows a job's Server-Sent Events. EventSource cannot send an Authorization header, so the stream URL comes
// from POST /v1/jobs/{id}/events:token (a short-lived, job-scoped token in the URL, never the API key); a server
// without that endpoint (404/405) is followed directly, which works with anonymous localhost access.

import { ApiError, api, jobPath } from './api.js';

const TYPES = ['job.queued', 'job.started', 'job.epoch', 'job.finding', 'job.succeeded', 'job.failed',
  'job.cancelled'];
const TERMINAL = new Set(['job.succeeded', 'job.failed', 'job.cancelled']);
const MAX_FAILURES = 5;

async function streamUrl(jobId, lastEventId) {
  let url = `${jobPath(jobId)}/events`;
  try {
    url = (await api(`${jobPath(jobId)}/events:token`, { method: 'POST' })).url;
  } catch (error) {
    if (!(error instanceof ApiError && (error.status === 404 || error.status === 405))) throw error;
  }
  if (!lastEventId) return url;
  return `${url}${url.includes('?') ? '&' : '?'}last_event_id=${lastEventId}`;
}

/** Calls onEvent({id, type, job_id, created_at, data}) for each event, from the job's first; stops after the
 * terminal one. Returns {close()}. */
export function follow(jobId, onEvent, onTrouble = () => {}) {
  let source = null;
  let lastId = 0;
  let closed = false;
  let failures = 0;

  const close = () => { closed = true; source?.close(); };
  const receive = (message) => {
    failures = 0;
    lastId = Number(message.lastEventId) || lastId;
    const event = JSON.parse(message.data);
    onEvent(event);
    if (TERMINAL.has(event.type)) close();
  };
  const open = async () => {
    let url;
    try { url = await streamUrl(jobId, lastId); } catch (error) { onTrouble(error); return; }
    if (closed) return;
    source = new EventSource(url);
    for (const type of TYPES) source.addEventListener(type, receive);
    source.onerror = () => {
      // EventSource reconnects by itself (with Last-Event-ID) unless the server refused it, e.g. an expired
      // token: then a fresh URL resumes after the last event seen.
      if (closed || source.readyState !== EventSource.CLOSED) return;
      failures += 1;
      if (failures > MAX_FAILURES) { onTrouble(new Error('the live stream is unavailable')); return; }
      setTimeout(open, 1000 * failures);
    };
  };
  open();
  return { close };
}
