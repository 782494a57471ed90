// Builds DOM nodes; every string becomes a text node or an attribute value, never HTML.

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function jobLink(id, label) {
  return el('a', { href: `#/jobs/${encodeURIComponent(id)}` }, label ?? id);
}

export function statusBadge(status) {
  return el('span', { class: `status status-${status}` }, status);
}

export function verdictName(job) {
  return job.verdict?.evidence?.verdict ?? '';
}

export function errorText(error) {
  return el('p', { class: 'error', role: 'alert' }, String(error.message ?? error));
}
