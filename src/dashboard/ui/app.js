// The dashboard's shell: hash routes (#/graph, #/services, #/services/NS/NAME, #/config), the
// header's status pills, and one refresh loop that re-reads the current page's JSON.
import { getJson, h } from './dom.js';
import { createConfigPage } from './config-view.js';
import { createGraphPage } from './graph-view.js';
import { createServicePage, createServicesPage } from './service-view.js';

const REFRESH_MS = 3000;

const main = document.getElementById('main');
const windowSelect = document.getElementById('window');
const refreshed = document.getElementById('refreshed');

const ctx = {
  /** The rate window every view uses, e.g. "1m" (?window= in the page URL sets the first one). */
  window: initialWindow(),
};

function initialWindow() {
  const fromUrl = new URLSearchParams(location.search).get('window');
  const value = fromUrl || localStorage.getItem('weft.window') || '1m';
  if (![...windowSelect.options].some((o) => o.value === value)) windowSelect.append(h('option', { value }, value));
  windowSelect.value = value;
  return value;
}

windowSelect.addEventListener('change', () => {
  ctx.window = windowSelect.value;
  localStorage.setItem('weft.window', ctx.window);
  refresh();
});

let page;
let timer;
let generation = 0;

function routeOf(hash) {
  const parts = hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  if (parts[0] === 'services' && parts.length === 3) return { name: 'service', create: () => createServicePage(main, ctx, parts[1], parts[2]) };
  if (parts[0] === 'services') return { name: 'services', create: () => createServicesPage(main, ctx) };
  if (parts[0] === 'config') return { name: 'config', create: () => createConfigPage(main, ctx) };
  return { name: 'graph', create: () => createGraphPage(main, ctx) };
}

function navigate() {
  const route = routeOf(location.hash);
  for (const a of document.querySelectorAll('[data-nav]')) a.classList.toggle('active', a.dataset.nav === route.name || (route.name === 'service' && a.dataset.nav === 'services'));
  page?.dispose?.();
  main.replaceChildren();
  page = route.create();
  document.body.dataset.page = route.name;
  refresh();
}

async function refreshStatus() {
  const health = await getJson('/api/v1/proxy-health');
  const version = document.getElementById('config-version');
  version.textContent = health.configVersion ? `config ${health.configVersion}` : 'no config';
  const proxies = health.proxies;
  const bad = proxies.filter((p) => p.health.unhealthy);
  const summary = document.getElementById('proxy-summary');
  summary.textContent = bad.length
    ? `${bad.length} of ${proxies.length} ${proxies.length === 1 ? 'proxy' : 'proxies'} out of sync`
    : `${proxies.length} ${proxies.length === 1 ? 'proxy' : 'proxies'} in sync`;
  summary.classList.toggle('bad', bad.length > 0);
  summary.classList.toggle('good', bad.length === 0 && proxies.length > 0);
  summary.dataset.unhealthy = String(bad.length);
  return health;
}

async function refresh() {
  clearTimeout(timer);
  const mine = ++generation;
  try {
    const health = await refreshStatus();
    await page?.refresh(health);
    refreshed.textContent = `updated ${new Date().toLocaleTimeString()}`;
    refreshed.classList.remove('bad');
  } catch (err) {
    refreshed.textContent = `refresh failed: ${err.message}`;
    refreshed.classList.add('bad');
  }
  if (mine === generation) timer = setTimeout(refresh, REFRESH_MS);
}

window.addEventListener('hashchange', navigate);
navigate();
