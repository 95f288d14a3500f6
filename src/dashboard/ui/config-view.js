// The config page (#/config): proxy sync status (STALE and NACK in red, with the proxy's error),
// progressive rollouts and health-gated applies (rollout-panel.js), the last config versions
// (the config history, with source and message) and which proxies run
// each, and every resource with its validation state — accepted, rejected (the last good version
// keeps serving) — and the analyzer's warnings.
import { fmtAgo, getJson, h } from './dom.js';
import { createRolloutPanel } from './rollout-panel.js';

export function createConfigPage(main) {
  const proxies = h('div');
  const versions = h('div');
  const resources = h('div');
  const rollouts = createRolloutPanel();
  main.append(
    h(
      'section',
      { class: 'page', 'data-page': 'config' },
      rollouts.el,
      h('h1', {}, 'Proxies'),
      proxies,
      h('div', { class: 'two-col wide-left' }, h('div', {}, h('h1', {}, 'Config resources'), resources), h('div', {}, h('h1', {}, 'Config versions'), versions)),
    ),
  );
  return {
    async refresh(health) {
      const [configz, snapshots] = await Promise.all([getJson('/debug/configz'), getJson('/debug/snapshots'), rollouts.refresh()]);
      proxies.replaceChildren(proxyTable(health));
      versions.replaceChildren(versionList(snapshots, health));
      resources.replaceChildren(resourceTable(configz));
    },
  };
}

function stateCell(state) {
  return h('span', { class: `state ${state}` }, state === 'NOT_SENT' ? 'NOT SENT' : state);
}

function proxyTable(health) {
  if (!health.proxies.length) return h('p', { class: 'empty' }, 'No proxies are connected.');
  const types = ['CDS', 'LDS', 'EDS', 'RDS', 'SDS'].filter((t) => health.proxies.some((p) => p.types?.some((x) => x.type === t)));
  const rows = [];
  for (const p of [...health.proxies].sort((a, b) => Number(b.health.unhealthy) - Number(a.health.unhealthy) || (a.id < b.id ? -1 : 1))) {
    rows.push(
      h(
        'tr',
        { 'data-proxy': p.id, 'data-state': p.health.state, class: p.health.unhealthy ? 'bad-row' : '' },
        h('td', {}, h('div', {}, p.workload ?? '—'), h('div', { class: 'mono small muted' }, p.id)),
        h('td', {}, p.type),
        h('td', {}, p.namespace),
        h('td', {}, stateCell(p.health.state), p.health.waitingSeconds ? h('span', { class: 'small muted' }, ` ${p.health.waitingSeconds}s`) : ''),
        types.map((t) => h('td', {}, stateCell(p.types?.find((x) => x.type === t)?.state ?? 'NOT_SENT'))),
        h('td', { class: p.snapshotVersion && p.snapshotVersion !== health.configVersion ? 'warn' : '' }, p.snapshotVersion ?? '—'),
        h('td', {}, p.scrape ? (p.scrape.ok ? h('span', { class: 'good small' }, 'ok') : h('span', { class: 'warn small', title: p.scrape.url }, p.scrape.error ?? 'not yet')) : '—'),
        h('td', { class: 'small muted' }, fmtAgo(p.connectedAt)),
      ),
    );
    for (const message of p.health.nacks) rows.push(h('tr', { class: 'nack-row' }, h('td', { colspan: 8 + types.length, class: 'nack' }, `NACK ${message}`)));
  }
  return h(
    'table',
    { class: 'grid-table', 'data-table': 'proxies' },
    h('thead', {}, h('tr', {}, ['Proxy', 'Type', 'Namespace', 'Sync', ...types, 'Version', 'Stats', 'Connected'].map((c) => h('th', {}, c)))),
    h('tbody', {}, rows),
  );
}

function versionList(snapshots, health) {
  const running = new Map();
  for (const p of health.proxies) if (p.snapshotVersion) running.set(p.snapshotVersion, (running.get(p.snapshotVersion) ?? 0) + 1);
  const list = [...snapshots].reverse().slice(0, 15);
  if (!list.length) return h('p', { class: 'empty' }, 'No config built yet.');
  return h(
    'ol',
    { class: 'versions' },
    list.map((s) =>
      h(
        'li',
        { 'data-version': s.version, class: s.version === health.configVersion ? 'current' : '' },
        h('div', {}, h('b', {}, s.version), s.version === health.configVersion ? h('span', { class: 'tag ok' }, 'serving') : null, running.get(s.version) ? h('span', { class: 'small muted' }, ` · ${running.get(s.version)} proxies`) : null),
        h('div', { class: 'small' }, s.message ? `${s.source}: ${s.message}` : s.reason),
        h('div', { class: 'small muted' }, `${new Date(s.createdAt).toLocaleTimeString()} · ${s.resources} resources · ${s.services} services`),
      ),
    ),
  );
}

function resourceTable(configz) {
  const rows = [];
  for (const r of configz.rejected) {
    rows.push(
      h(
        'tr',
        { 'data-resource': r.key, 'data-validation': 'rejected', class: 'bad-row' },
        h('td', {}, r.key),
        h('td', { class: 'small muted' }, r.source ?? ''),
        h('td', {}, h('span', { class: 'tag bad' }, 'rejected'), r.lastGoodServing ? h('div', { class: 'small muted' }, 'last good version keeps serving') : null),
      ),
      h('tr', { class: 'nack-row' }, h('td', { colspan: 3 }, r.messages.map((m) => h('div', { class: 'nack' }, m)))),
    );
  }
  const warningsByKey = new Map();
  for (const w of configz.warnings ?? []) {
    const key = w.kind ? `${w.kind}/${w.namespace}/${w.name}` : '';
    (warningsByKey.get(key) ?? warningsByKey.set(key, []).get(key)).push(w.message);
  }
  for (const r of configz.accepted) {
    const warnings = warningsByKey.get(r.key) ?? [];
    warningsByKey.delete(r.key);
    rows.push(
      h(
        'tr',
        { 'data-resource': r.key, 'data-validation': 'accepted' },
        h('td', {}, r.key),
        h('td', { class: 'small muted' }, r.source ?? ''),
        h('td', {}, h('span', { class: 'tag ok' }, 'accepted'), warnings.map((m) => h('div', { class: 'warn small' }, m))),
      ),
    );
  }
  for (const [key, messages] of warningsByKey) rows.push(h('tr', {}, h('td', {}, key || 'mesh'), h('td'), h('td', {}, messages.map((m) => h('div', { class: 'warn small' }, m)))));
  return h(
    'table',
    { class: 'grid-table', 'data-table': 'resources' },
    h('thead', {}, h('tr', {}, ['Resource', 'Source', 'Validation'].map((c) => h('th', {}, c)))),
    h('tbody', {}, rows),
  );
}
