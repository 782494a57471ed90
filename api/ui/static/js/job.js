// One job: live curves (SSE), findings with their evidence and "retry with this fix", the parent/children chain,
// the dataset's description.

import { api, jobPath } from './api.js';
import { addEpoch, draw, emptyCurves, traces } from './chart.js';
import { el, errorText, jobLink, statusBadge, verdictName } from './dom.js';
import { follow } from './events.js';

const FINISHED = new Set(['succeeded', 'failed', 'cancelled']);

function json(value) {
  return el('pre', {}, JSON.stringify(value, null, 2));
}

function summary(job) {
  return el('div', {},
    el('h1', {}, job.name ?? job.id),
    el('p', {}, el('span', { class: 'muted' }, job.id), ' · ', statusBadge(job.status),
      ' · epoch ', el('span', { id: 'epoch' }, `${job.progress.epoch} / ${job.progress.epochs}`),
      job.stop_reason ? ` · stopped: ${job.stop_reason}` : '',
      verdictName(job) ? ` · verdict: ${verdictName(job)}` : ''),
    job.error ? el('p', { class: 'error' }, `${job.error.type}: ${job.error.message}`) : '');
}

function findingsCard(job, onRetry) {
  const items = job.findings.map((finding, index) => el('div', { class: 'finding', 'data-code': finding.code },
    el('div', {}, el('strong', { class: `severity-${finding.severity}` }, finding.severity), ' ',
      el('code', {}, finding.code), finding.epoch ? ` (epoch ${finding.epoch})` : '', ' — ', finding.message),
    Object.keys(finding.evidence ?? {}).length ? el('details', {}, el('summary', {}, 'evidence'),
      json(finding.evidence)) : '',
    (finding.suggestions ?? []).map((suggestion, s) => el('div', { class: 'suggestion' },
      el('button', { class: 'retry', 'data-finding': index, 'data-suggestion': s,
        onclick: (e) => onRetry(e.currentTarget, index, s) }, 'Retry with this fix'),
      ' ', suggestion.summary, el('details', {}, el('summary', {}, 'patch'), json(suggestion.patch))))));
  return el('section', { class: 'card', id: 'findings' }, el('h2', {}, 'Findings'),
    items.length ? items : el('p', { class: 'muted' }, 'No findings yet.'));
}

function chainCard(job, role) {
  const best = job.best_metrics ?? job.last_metrics ?? {};
  return el('div', { class: `card ${role === 'this job' ? 'current' : ''}`, 'data-role': role },
    el('div', { class: 'muted' }, role), el('div', {}, jobLink(job.id, job.name ?? job.id)),
    el('div', {}, statusBadge(job.status), ` · epoch ${job.progress.epoch} / ${job.progress.epochs}`),
    verdictName(job) ? el('div', {}, `verdict: ${verdictName(job)}`) : '',
    best.val_loss !== undefined ? el('div', {}, `val_loss ${Number(best.val_loss).toPrecision(4)}`) : '');
}

async function chainSection(job) {
  const ids = [job.parent_id, ...(job.children ?? [])].filter(Boolean);
  const others = await Promise.all(ids.map((id) => api(jobPath(id)).catch(() => null)));
  const byId = new Map(others.filter(Boolean).map((j) => [j.id, j]));
  const cards = [];
  if (byId.has(job.parent_id)) cards.push(chainCard(byId.get(job.parent_id), 'parent'));
  cards.push(chainCard(job, 'this job'));
  for (const id of job.children ?? []) if (byId.has(id)) cards.push(chainCard(byId.get(id), 'child'));
  const family = [job.parent_id, job.id, ...(job.children ?? [])].filter(Boolean);
  const attempt = (a) => el('div', { class: `card ${a.job_id === job.id ? 'current' : ''}`, 'data-role': 'attempt' },
    el('div', {}, jobLink(a.job_id)), el('div', {}, statusBadge(a.status), a.verdict ? ` · ${a.verdict}` : ''),
    a.applied ? el('div', { class: 'muted' }, `applied: ${a.applied}`) : '');
  const repair = (job.repair?.attempts ?? []).map(attempt);
  return el('section', { class: 'card', id: 'chain' },
    el('h2', {}, 'Parent and children'), el('div', { class: 'chain' }, cards),
    repair.length ? [el('h3', {}, 'Auto-repair attempts'), el('div', { class: 'chain' }, repair)] : '',
    family.length > 1 ? el('p', {}, el('a', { href: `#/compare?ids=${family.map(encodeURIComponent).join(',')}` },
      'Compare their curves')) : '');
}

async function datasetSection(datasetId) {
  const card = el('section', { class: 'card', id: 'dataset' }, el('h2', {}, 'Dataset'));
  try {
    const d = await api(`/v1/datasets/${encodeURIComponent(datasetId)}`);
    const arrays = Object.entries(d.arrays ?? {}).map(([name, info]) => `${name}: ${JSON.stringify(info.shape)} ` +
      `${info.dtype ?? ''}`);
    card.append(el('dl', {},
      el('dt', {}, 'id'), el('dd', {}, d.id), el('dt', {}, 'title'), el('dd', {}, d.title ?? d.filename ?? ''),
      el('dt', {}, 'format'), el('dd', {}, d.format), el('dt', {}, 'samples'), el('dd', {}, d.samples ?? ''),
      el('dt', {}, 'arrays'), el('dd', {}, arrays.join('; ')),
      d.classes ? [el('dt', {}, 'classes'), el('dd', {}, d.classes.join(', '))] : []),
    d.description ? el('details', {}, el('summary', {}, 'description'), json(d.description)) : '');
  } catch (error) {
    card.append(errorText(error));
  }
  return card;
}

export function jobView(root, jobId) {
  const head = el('div');
  const plot = el('div', { class: 'plot', id: 'curves' });
  const findings = el('div');
  const chain = el('div');
  const dataset = el('div');
  const message = el('div');
  root.replaceChildren(head, message,
    el('div', { class: 'grid' }, el('section', { class: 'card' }, plot), dataset), findings, chain);

  let job = null;
  let curves = emptyCurves();
  let stream = null;
  let gone = false;
  let pending = null;
  const redraw = () => draw(plot, traces(curves), 'curves');

  const retry = async (button, finding, suggestion) => {
    button.disabled = true;
    try {
      const child = await api(`${jobPath(jobId)}/retry`, { method: 'POST', body: { finding, suggestion } });
      location.hash = `#/jobs/${encodeURIComponent(child.id)}`;
    } catch (error) {
      button.disabled = false;
      button.after(errorText(error));
    }
  };
  const refresh = async () => {
    job = await api(jobPath(jobId));
    if (gone) return;
    head.replaceChildren(summary(job));
    findings.replaceChildren(findingsCard(job, retry));
    chain.replaceChildren(await chainSection(job));
  };
  const onEvent = (event) => {
    if (event.type === 'job.epoch') {
      addEpoch(curves, event.data.epoch, event.data.metrics ?? {});
      redraw();
      const epoch = document.getElementById('epoch');
      if (epoch) epoch.textContent = `${event.data.epoch} / ${event.data.epochs}`;
    } else {
      // A stream replays the job's history first: one refresh for a burst of status and finding events.
      clearTimeout(pending);
      pending = setTimeout(() => refresh().catch((error) => message.replaceChildren(errorText(error))), 150);
    }
  };

  (async () => {
    try {
      await refresh();
      dataset.replaceChildren(await datasetSection(job.dataset));
      if (FINISHED.has(job.status)) {
        curves = await api(`${jobPath(jobId)}/curves`);
        redraw();
      } else {
        redraw();  // empty axes until the first epoch
        stream = follow(jobId, onEvent, (error) => message.replaceChildren(errorText(error)));
      }
    } catch (error) {
      message.replaceChildren(errorText(error));
    }
  })();
  return () => { gone = true; clearTimeout(pending); stream?.close(); };
}
