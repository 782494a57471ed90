// The jobs list: status, epoch, verdict; a status filter; pick several to compare.

import { api } from './api.js';
import { el, errorText, jobLink, statusBadge, verdictName } from './dom.js';

const STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];
const REFRESH_MS = 5000;

function epochText(job) {
  return `${job.progress.epoch} / ${job.progress.epochs}`;
}

export function jobsView(root, query) {
  const status = query.get('status') ?? '';
  const selected = new Set();
  let cursor = null;
  let paged = false;  // once older pages are shown, the periodic refresh would drop them: it stops

  const body = el('tbody');
  const message = el('div');
  const filter = el('select', {
    id: 'status-filter', 'aria-label': 'status',
    onchange: () => { location.hash = filter.value ? `#/jobs?status=${filter.value}` : '#/jobs'; },
  }, el('option', { value: '' }, 'all statuses'),
  STATUSES.map((s) => el('option', { value: s, selected: s === status }, s)));
  const compare = el('button', {
    id: 'compare-selected', disabled: true,
    onclick: () => { location.hash = `#/compare?ids=${[...selected].map(encodeURIComponent).join(',')}`; },
  }, 'Compare selected');
  const older = el('button', { hidden: true, onclick: () => { paged = true; load(cursor); } }, 'Older jobs');

  const row = (job) => {
    const box = el('input', {
      type: 'checkbox', 'aria-label': `select ${job.id}`, checked: selected.has(job.id),
      onchange: () => {
        if (box.checked) selected.add(job.id); else selected.delete(job.id);
        compare.disabled = selected.size < 2;
      },
    });
    return el('tr', { 'data-job': job.id },
      el('td', {}, box), el('td', {}, jobLink(job.id)), el('td', {}, job.name ?? ''),
      el('td', {}, statusBadge(job.status)), el('td', { class: 'epoch' }, epochText(job)),
      el('td', { class: 'verdict' }, verdictName(job)), el('td', {}, job.dataset),
      el('td', { class: 'muted' }, new Date(job.timings.created_at).toLocaleString()));
  };

  async function load(from = null) {
    const params = new URLSearchParams({ limit: '50' });
    if (status) params.set('status', status);
    if (from) params.set('cursor', from);
    try {
      const page = await api(`/v1/jobs?${params}`);
      if (!from) body.replaceChildren();
      body.append(...page.items.map(row));
      cursor = page.next_cursor;
      older.hidden = !cursor;
      message.replaceChildren(page.items.length || from ? '' : el('p', { class: 'muted' }, 'No jobs.'));
    } catch (error) {
      message.replaceChildren(errorText(error));
    }
  }

  root.replaceChildren(
    el('div', { class: 'toolbar' }, el('h1', {}, 'Jobs'), filter, compare,
      el('button', { onclick: () => { paged = false; load(); } }, 'Refresh')),
    message,
    el('table', { id: 'jobs' }, el('thead', {}, el('tr', {}, ['', 'id', 'name', 'status', 'epoch', 'verdict',
      'dataset', 'submitted'].map((h) => el('th', {}, h)))), body),
    older);
  load();
  const timer = setInterval(() => { if (!paged && !document.hidden) load(); }, REFRESH_MS);
  return () => clearInterval(timer);
}
