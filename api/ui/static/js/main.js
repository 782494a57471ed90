// The dashboard's hash router (#/jobs, #/jobs/<id>, #/compare?ids=a,b) and the API key form.

import { auth } from './api.js';
import { compareView } from './compare.js';
import { jobView } from './job.js';
import { jobsView } from './jobs.js';

const view = document.getElementById('view');
let leave = () => {};

function route() {
  leave();
  const [path, search = ''] = location.hash.replace(/^#/, '').split('?');
  const query = new URLSearchParams(search);
  const parts = path.split('/').filter(Boolean);
  if (parts[0] === 'jobs' && parts[1]) leave = jobView(view, decodeURIComponent(parts[1]));
  else if (parts[0] === 'compare') leave = compareView(view, query);
  else leave = jobsView(view, query);
}

function showAuth() {
  document.getElementById('auth-state').textContent = auth.get() ? 'key in use (this tab)' : 'anonymous';
}

document.getElementById('auth').addEventListener('submit', (event) => {
  event.preventDefault();
  const input = document.getElementById('api-key');
  if (input.value.trim()) auth.set(input.value.trim());
  input.value = '';
  showAuth();
  route();
});
document.getElementById('forget-key').addEventListener('click', () => { auth.clear(); showAuth(); route(); });
window.addEventListener('hashchange', route);
showAuth();
route();
