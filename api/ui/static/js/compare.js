// Several jobs' curves overlaid: one metric (or all) per job, from GET /v1/jobs/{id}/curves.

import { api, jobPath } from './api.js';
import { draw, metricNames, traces } from './chart.js';
import { el, errorText, jobLink } from './dom.js';

function go(ids, metric) {
  const query = new URLSearchParams({ ids: ids.join(',') });
  if (metric) query.set('metric', metric);
  location.hash = `#/compare?${query}`;
}

export function compareView(root, query) {
  const ids = (query.get('ids') ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const chosen = query.get('metric') ?? '';
  const plot = el('div', { class: 'plot', id: 'compare-plot' });
  const message = el('div');
  const legend = el('ul');
  const input = el('input', { id: 'compare-ids', size: 60, value: ids.join(','),
    placeholder: 'job ids, comma-separated' });
  const metric = el('select', { id: 'compare-metric', 'aria-label': 'metric',
    onchange: () => go(ids, metric.value) }, el('option', { value: '' }, 'all metrics'));
  root.replaceChildren(
    el('div', { class: 'toolbar' }, el('h1', {}, 'Compare'), input,
      el('button', { onclick: () => go(input.value.split(',').map((s) => s.trim()).filter(Boolean), chosen) },
        'Show'), metric),
    message, el('section', { class: 'card' }, plot), el('section', { class: 'card' }, legend));
  if (!ids.length) {
    message.replaceChildren(el('p', { class: 'muted' }, 'Pick jobs in the list, or paste their ids.'));
    return () => {};
  }

  (async () => {
    try {
      const jobs = await Promise.all(ids.map(async (id) => ({
        job: await api(jobPath(id)), curves: await api(`${jobPath(id)}/curves`) })));
      const names = [...new Set(jobs.flatMap(({ curves }) => metricNames(curves)))];
      metric.append(...names.map((n) => el('option', { value: n, selected: n === chosen }, n)));
      const shown = chosen ? [chosen] : undefined;
      draw(plot, jobs.flatMap(({ job, curves }) => traces(curves, job.name ? `${job.name} (${job.id})` : job.id,
        shown)), chosen || 'all metrics');
      legend.replaceChildren(...jobs.map(({ job, curves }) => el('li', { 'data-job': job.id }, jobLink(job.id),
        ` ${job.name ?? ''} · ${job.status} · ${curves.epoch.length} epochs`)));
    } catch (error) {
      message.replaceChildren(errorText(error));
    }
  })();
  return () => {};
}
