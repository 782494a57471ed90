// Curves with Plotly (the global that vendor/plotly.min.js defines): losses on the left axis, the other
// metrics (accuracy, AUC, ...) on the right.

const CONFIG = { displaylogo: false, responsive: true };

export function metricNames(curves) {
  return Object.keys(curves).filter((name) => name !== 'epoch' && name !== 'duration_s');
}

function axisOf(metric) {
  return metric.includes('loss') ? 'y' : 'y2';
}

function layout(title, hasRight) {
  const layout = {
    title: { text: title }, margin: { t: 40, r: 60, l: 60, b: 40 }, legend: { orientation: 'h' },
    xaxis: { title: { text: 'epoch' } }, yaxis: { title: { text: 'loss' } },
  };
  // Only when a trace uses it: Plotly fails on an axis key that is present but undefined.
  if (hasRight) layout.yaxis2 = { overlaying: 'y', side: 'right', title: { text: 'metric' } };
  return layout;
}

export function traces(curves, label = '', metrics = metricNames(curves)) {
  return metrics.filter((m) => curves[m]).map((metric) => ({
    x: curves.epoch, y: curves[metric], name: label ? `${label} ${metric}` : metric, mode: 'lines+markers',
    yaxis: axisOf(metric), line: { dash: metric.startsWith('val_') ? 'solid' : 'dot' },
  }));
}

/** Draws or redraws; node.dataset.epochs is the number of epochs shown (tests and screen readers read it). */
export function draw(node, data, title) {
  window.Plotly.react(node, data, layout(title, data.some((t) => t.yaxis === 'y2')), CONFIG);
  node.dataset.epochs = String(Math.max(0, ...data.map((t) => t.x.length)));
}

export function emptyCurves() {
  return { epoch: [] };
}

/** Adds one job.epoch event's metrics to columnar curves (the shape of GET /v1/jobs/{id}/curves). */
export function addEpoch(curves, epoch, metrics) {
  if (curves.epoch.includes(epoch)) return;
  const before = curves.epoch.length;
  curves.epoch.push(epoch);
  for (const [name, value] of Object.entries(metrics)) {
    curves[name] ??= new Array(before).fill(null);
    curves[name].push(value);
  }
  for (const name of metricNames(curves)) if (curves[name].length === before) curves[name].push(null);
}
