// The services list (#/services) and one service's page (#/services/NS/NAME): golden signals
// over time as plots — request rate per serving workload, 5xx share, p50/p99 — plus who calls
// it, whom it calls and the routing config that names it.
import { fmtMs, fmtPercent, fmtRate, getJson, h } from './dom.js';
import { linePlot, PALETTE } from './plots.js';

export function createServicesPage(main, ctx) {
  const body = h('div');
  main.append(h('section', { class: 'page', 'data-page': 'services' }, h('h1', {}, 'Services'), body));
  return {
    async refresh() {
      const services = await getJson(`/api/v1/services?window=${encodeURIComponent(ctx.window)}`);
      if (!services.length) {
        body.replaceChildren(h('p', { class: 'empty' }, 'No services in the config yet.'));
        return;
      }
      body.replaceChildren(
        h(
          'table',
          { class: 'grid-table' },
          h('thead', {}, h('tr', {}, ['Service', 'Namespace', 'Workloads', 'Requests/s', '5xx', 'p50', 'p99'].map((c) => h('th', {}, c)))),
          h(
            'tbody',
            {},
            services.map((s) =>
              h(
                'tr',
                { 'data-service': `${s.namespace}/${s.name}` },
                h('td', {}, h('a', { href: `#/services/${encodeURIComponent(s.namespace)}/${encodeURIComponent(s.name)}` }, s.name)),
                h('td', {}, s.namespace),
                h('td', {}, s.workloads.join(', ') || h('span', { class: 'muted' }, 'none')),
                h('td', { class: 'num' }, fmtRate(s.inbound.rps)),
                h('td', { class: `num ${s.inbound.errorRate ? 'bad' : ''}` }, fmtPercent(s.inbound.errorRate)),
                h('td', { class: 'num' }, fmtMs(s.inbound.p50)),
                h('td', { class: 'num' }, fmtMs(s.inbound.p99)),
              ),
            ),
          ),
        ),
      );
    },
  };
}

export function createServicePage(main, ctx, namespace, name) {
  const head = h('div', { class: 'service-head' });
  const plots = h('div', { class: 'plots' });
  const tables = h('div', { class: 'two-col' });
  main.append(
    h(
      'section',
      { class: 'page', 'data-page': 'service', 'data-service': `${namespace}/${name}` },
      h('p', { class: 'crumbs' }, h('a', { href: '#/services' }, 'Services'), ' / ', `${namespace}/${name}`),
      head,
      plots,
      tables,
    ),
  );
  return {
    async refresh() {
      // The plots always show the whole history kept (10 minutes); the header window sets the totals.
      const data = await getJson(`/api/v1/services/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}/signals?window=10m`);
      const s = data.service;
      head.replaceChildren(
        h('h1', {}, s.name, h('span', { class: 'muted' }, ` ${s.namespace}`)),
        h('p', { class: 'mono muted' }, s.hostname, s.ports.length ? ` · ${s.ports.map((p) => `${p.port}/${p.protocol}`).join(', ')}` : ''),
        h(
          'div',
          { class: 'stat-row' },
          stat('Requests/s', fmtRate(s.inbound.rps)),
          stat('5xx', fmtPercent(s.inbound.errorRate), s.inbound.errorRate ? 'bad' : ''),
          stat('p50', fmtMs(s.inbound.p50)),
          stat('p99', fmtMs(s.inbound.p99)),
          stat('mTLS', s.inbound.mtlsShare === null ? '–' : fmtPercent(s.inbound.mtlsShare)),
        ),
        h('p', { class: 'small muted' }, 'Totals over the last 10 minutes kept by the control plane.'),
      );
      const t = (points, key) => points.map((p) => ({ t: p.t, v: p[key] }));
      plots.replaceChildren(
        linePlot({
          id: 'rps',
          title: 'Requests per second, by serving workload',
          format: (v) => fmtRate(v),
          series: [
            { name: 'total', color: '#334155', points: t(data.points, 'rps') },
            ...data.byWorkload.map((w, i) => ({ name: w.workload, color: PALETTE[i % PALETTE.length], points: w.points.map((p) => ({ t: p.t, v: p.rps })) })),
          ],
        }),
        linePlot({ id: 'errors', title: '5xx share', format: (v) => fmtPercent(v), series: [{ name: '5xx', color: '#dc2626', points: t(data.points, 'errorRate') }] }),
        linePlot({
          id: 'latency',
          title: 'Latency',
          format: (v) => fmtMs(v),
          series: [
            { name: 'p50', color: '#2563eb', points: t(data.points, 'p50') },
            { name: 'p99', color: '#d97706', points: t(data.points, 'p99') },
          ],
        }),
      );
      tables.replaceChildren(
        h('div', {}, h('h2', {}, 'Called by'), trafficTable(data.callers.map((c) => [c.workload, c.numbers]))),
        h('div', {}, h('h2', {}, 'Calls'), trafficTable(data.calls.map((c) => [c.service, c.numbers]))),
        h(
          'div',
          {},
          h('h2', {}, 'Routing config'),
          data.config.length
            ? h('ul', { class: 'plain' }, data.config.map((c) => h('li', {}, h('a', { href: '#/config' }, `${c.kind} ${c.namespace}/${c.name}`))))
            : h('p', { class: 'muted' }, 'No VirtualService or DestinationRule names this service.'),
          h('h2', {}, 'Workloads'),
          s.workloads.length ? h('ul', { class: 'plain' }, s.workloads.map((w) => h('li', {}, w))) : h('p', { class: 'muted' }, 'None.'),
        ),
      );
    },
  };
}

function stat(label, value, cls = '') {
  return h('div', { class: `stat ${cls}` }, h('div', { class: 'stat-value' }, value), h('div', { class: 'stat-label' }, label));
}

function trafficTable(rows) {
  if (!rows.length) return h('p', { class: 'muted' }, 'No traffic recorded.');
  return h(
    'table',
    { class: 'grid-table compact' },
    h('thead', {}, h('tr', {}, ['', 'Requests/s', '5xx', 'p99'].map((c) => h('th', {}, c)))),
    h(
      'tbody',
      {},
      rows.map(([name, n]) =>
        h('tr', {}, h('td', {}, name), h('td', { class: 'num' }, fmtRate(n.rps)), h('td', { class: `num ${n.errorRate ? 'bad' : ''}` }, fmtPercent(n.errorRate)), h('td', { class: 'num' }, fmtMs(n.p99))),
      ),
    ),
  );
}
