// The service graph page: /api/v1/graph drawn as SVG at the positions the control plane laid out
// (callers left of callees), app boxes around the versions of an app, edges labelled with request
// rate, error share, p99 and a padlock for mTLS, and a side panel with the details of what is
// clicked.
import { fmtBytes, fmtMs, fmtPercent, fmtRate, getJson, h, padlock, svg } from './dom.js';

const NODE_W = 190;
const NODE_H = 56;
const MARGIN = { top: 56, right: 40, bottom: 40, left: 40 };
const FAILURE = 0.1;

export function createGraphPage(main, ctx) {
  let selected = null;
  let last = null;
  const canvas = h('div', { class: 'graph-canvas' });
  const side = h('aside', { class: 'side-panel' });
  const summary = h('div', { class: 'graph-summary' });
  main.append(
    h('section', { class: 'graph-page', 'data-page': 'graph' }, h('div', { class: 'graph-main' }, summary, canvas, legend()), side),
  );

  const select = (item) => {
    selected = item;
    if (last) draw(last);
  };

  function draw(graph) {
    last = graph;
    const byId = new Map(graph.nodes.map((n) => [n.id, n]));
    summary.replaceChildren(summaryLine(graph));
    if (graph.nodes.length === 0) {
      canvas.replaceChildren(h('p', { class: 'empty' }, 'No proxies are connected and no traffic has been recorded yet.'));
      side.replaceChildren(sideSummary(graph, select));
      return;
    }
    const width = graph.layout.width + MARGIN.left + MARGIN.right;
    const height = graph.layout.height + MARGIN.top + MARGIN.bottom;
    // Fill the canvas, but never blow a small graph up past 1.5x nor shrink a large one below
    // 0.6x (it scrolls instead): labels must stay readable.
    const scale = Math.min(1.5, Math.max(0.6, Math.min((canvas.clientWidth - 16) / width, (canvas.clientHeight - 16) / height)));
    const root = svg('svg', {
      class: 'graph',
      viewBox: `${-MARGIN.left} ${-MARGIN.top} ${width} ${height}`,
      width: Math.round(width * scale),
      height: Math.round(height * scale),
      'data-nodes': graph.nodes.length,
      'data-edges': graph.edges.length,
    });
    root.append(markers());
    const groups = svg('g', { class: 'groups' });
    for (const g of graph.groups) if (g.nodes.length > 1) groups.append(groupBox(g, byId));
    const edges = svg('g', { class: 'edges' });
    const labels = svg('g', { class: 'edge-labels' });
    for (const e of graph.edges) {
      const [path, label] = edgeView(e, byId, selected, select);
      edges.append(path);
      if (label) labels.append(label);
    }
    const nodes = svg('g', { class: 'nodes' });
    for (const n of graph.nodes) nodes.append(nodeView(n, selected, select));
    root.append(groups, edges, nodes, labels);
    root.addEventListener('click', (ev) => {
      if (ev.target === root) select(null);
    });
    canvas.replaceChildren(root);
    fitNames(root);
    side.replaceChildren(selected ? details(graph, selected, byId, select) : sideSummary(graph, select));
  }

  return {
    async refresh() {
      draw(await getJson(`/api/v1/graph?window=${encodeURIComponent(ctx.window)}`));
    },
  };
}

function summaryLine(graph) {
  const active = graph.edges.filter((e) => !e.idle);
  const entry = graph.nodes.filter((n) => n.gateway || n.kind === 'unknown');
  const rps = entry.length
    ? graph.edges.filter((e) => entry.some((n) => n.id === e.source)).reduce((s, e) => s + e.numbers.rps, 0)
    : active.reduce((s, e) => s + e.numbers.rps, 0);
  const workloads = graph.nodes.filter((n) => n.kind === 'workload').length;
  return h(
    'div',
    { class: 'summary-items' },
    h('span', {}, h('b', {}, workloads), ` workloads`),
    h('span', {}, h('b', {}, active.length), ` active edges`),
    h('span', {}, h('b', {}, fmtRate(rps)), ` req/s into the mesh`),
    h('span', { class: 'muted' }, `rates over the last ${graph.coveredSeconds ? `${Math.round(graph.coveredSeconds)} s` : '—'} (scraped every ${graph.collector.intervalSeconds} s)`),
  );
}

function legend() {
  const item = (cls, text) => h('span', { class: 'legend-item' }, h('span', { class: `swatch ${cls}` }), text);
  return h(
    'div',
    { class: 'legend' },
    item('ok', 'healthy'),
    item('degraded', 'some 5xx'),
    item('failure', `≥ ${FAILURE * 100}% 5xx`),
    item('idle', 'no traffic in window'),
    h('span', { class: 'legend-item' }, svg('svg', { width: 12, height: 12, viewBox: '0 0 12 12' }, padlock(1, 0, 11, 'lock full')), 'mutual TLS'),
    item('proxy-bad', 'proxy STALE / NACK'),
  );
}

function markers() {
  const defs = svg('defs');
  for (const cls of ['ok', 'degraded', 'failure', 'idle', 'tcp']) {
    defs.append(
      svg(
        'marker',
        { id: `arrow-${cls}`, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 11, markerHeight: 11, markerUnits: 'userSpaceOnUse', orient: 'auto-start-reverse', class: `arrow ${cls}` },
        svg('path', { d: 'M0,0 L10,5 L0,10 z' }),
      ),
    );
  }
  return defs;
}

function groupBox(group, byId) {
  const members = group.nodes.map((id) => byId.get(id)).filter(Boolean);
  const xs = members.map((n) => n.x);
  const ys = members.map((n) => n.y);
  const x = Math.min(...xs) - NODE_W / 2 - 14;
  const y = Math.min(...ys) - NODE_H / 2 - 30;
  const w = Math.max(...xs) - Math.min(...xs) + NODE_W + 28;
  const hgt = Math.max(...ys) - Math.min(...ys) + NODE_H + 44;
  return svg(
    'g',
    { class: 'app-group', 'data-app': group.app, 'data-namespace': group.namespace },
    svg('rect', { x, y, width: w, height: hgt, rx: 14 }),
    svg('text', { x: x + 12, y: y + 19, class: 'group-label' }, group.app, svg('tspan', { class: 'muted', dx: 6 }, group.namespace)),
  );
}

function edgeClass(e) {
  if (e.idle || (e.numbers.requests === 0 && !e.numbers.tcp)) return 'idle';
  if (e.numbers.errorRate !== null && e.numbers.errorRate >= FAILURE) return 'failure';
  if (e.numbers.errorRate) return 'degraded';
  if (e.protocol === 'tcp') return 'tcp';
  return 'ok';
}

function curve(s, t) {
  const sx = s.x + NODE_W / 2;
  const tx = t.x - NODE_W / 2;
  if (s.id === t.id) {
    const x = s.x + NODE_W / 2 - 30;
    const y = s.y - NODE_H / 2;
    return { d: `M${x},${y} C${x + 10},${y - 50} ${x + 60},${y - 30} ${x + 30},${y + 2}`, at: () => ({ x: x + 30, y: y - 40 }) };
  }
  // A call to the same column or back to the left loops below, so it never hides behind nodes.
  const back = tx <= sx;
  const dx = back ? 120 : (tx - sx) / 2;
  const c1 = { x: sx + dx, y: s.y + (back ? 70 : 0) };
  const c2 = { x: tx - dx, y: t.y + (back ? 70 : 0) };
  const at = (u) => {
    const v = 1 - u;
    return {
      x: v * v * v * sx + 3 * v * v * u * c1.x + 3 * v * u * u * c2.x + u * u * u * tx,
      y: v * v * v * s.y + 3 * v * v * u * c1.y + 3 * v * u * u * c2.y + u * u * u * t.y,
    };
  };
  return { d: `M${sx},${s.y} C${c1.x},${c1.y} ${c2.x},${c2.y} ${tx - 3},${t.y}`, at };
}

/** The label's lines: volume first, then errors and latency (on a second line when it is long). */
function edgeLines(e) {
  const n = e.numbers;
  if (e.idle || (n.requests === 0 && !n.tcp)) return ['idle'];
  const volume = [];
  const quality = [];
  if (e.serviceShare !== null && e.serviceShare < 0.995) volume.push(fmtPercent(e.serviceShare));
  if (n.tcp && !n.requests) {
    volume.push(fmtBytes(n.tcp.sentBytesPerSecond + n.tcp.receivedBytesPerSecond));
  } else {
    volume.push(`${fmtRate(n.rps)} rps`);
    if (n.errorRate) quality.push(`${fmtPercent(n.errorRate)} err`);
    if (n.p99 !== null) quality.push(`p99 ${fmtMs(n.p99)}`);
  }
  const one = [...volume, ...quality].join(' · ');
  return one.length <= 26 || quality.length === 0 ? [one] : [volume.join(' · '), quality.join(' · ')];
}

function edgeText(e) {
  return edgeLines(e).join(' · ');
}

function mtlsOf(e) {
  const share = e.numbers.mtlsShare;
  if (share === null || share === undefined) return 'unknown';
  return share >= 0.999 ? 'full' : share > 0 ? 'partial' : 'none';
}

function edgeView(e, byId, selected, select) {
  const s = byId.get(e.source);
  const t = byId.get(e.target);
  if (!s || !t) return [svg('g'), null];
  const cls = edgeClass(e);
  const mtls = mtlsOf(e);
  const { d, at } = curve(s, t);
  const width = cls === 'idle' ? 1.25 : Math.min(6, 1.6 + Math.log2(1 + e.numbers.rps));
  const isSelected = selected?.edge === e.id;
  const attrs = {
    class: `edge ${cls}${isSelected ? ' selected' : ''}`,
    'data-edge': `${s.name}->${t.name}`,
    'data-source': s.name,
    'data-target': t.name,
    'data-rps': e.numbers.rps,
    'data-error-rate': e.numbers.errorRate ?? '',
    'data-p50': e.numbers.p50 ?? '',
    'data-p99': e.numbers.p99 ?? '',
    'data-mtls': mtls,
    'data-share': e.serviceShare ?? '',
    'data-idle': String(cls === 'idle'),
    'data-protocol': e.protocol,
    onclick: (ev) => {
      ev.stopPropagation();
      select({ edge: e.id });
    },
  };
  const path = svg(
    'g',
    attrs,
    svg('title', { text: `${s.name} → ${t.name}: ${edgeText(e)}` }),
    svg('path', { class: 'hit', d }),
    svg('path', { class: 'line', d, 'stroke-width': width, 'marker-end': `url(#arrow-${cls})` }),
  );
  const p = at(0.5);
  const lines = edgeLines(e);
  const lockW = mtls === 'full' || mtls === 'partial' ? 14 : 0;
  // Close enough for the UI font at 12px; the pill only frames the text.
  const textW = Math.max(...lines.map((l) => l.length)) * 6.6;
  const height = 8 + lines.length * 14;
  const label = svg(
    'g',
    { class: `edge-label ${cls}`, 'data-edge-label': `${s.name}->${t.name}`, transform: `translate(${p.x},${p.y})` },
    svg('rect', { x: -(textW + lockW) / 2 - 7, y: -height / 2, width: textW + lockW + 14, height, rx: 11 }),
    lockW ? padlock(-(textW + lockW) / 2, -6.5, 12, `lock ${mtls}`) : null,
    lines.map((line, i) => svg('text', { x: lockW / 2, y: 4.5 + (i - (lines.length - 1) / 2) * 14, 'text-anchor': 'middle' }, line)),
  );
  label.addEventListener('click', (ev) => {
    ev.stopPropagation();
    select({ edge: e.id });
  });
  return [path, label];
}

/** Squeezes a long workload name into its box (measured once the text is in the page). */
function fitNames(root) {
  const room = NODE_W - 44;
  for (const text of root.querySelectorAll('.node text.name')) {
    if (text.getComputedTextLength() > room) {
      text.setAttribute('textLength', room);
      text.setAttribute('lengthAdjust', 'spacingAndGlyphs');
    }
  }
}

function truncate(text, max) {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function nodeView(n, selected, select) {
  const proxyBad = n.proxy?.unhealthy;
  const cls = ['node', n.kind, `health-${n.health}`, n.gateway ? 'gateway' : '', proxyBad ? 'proxy-bad' : '', selected?.node === n.id ? 'selected' : ''].filter(Boolean).join(' ');
  // The shape already says gateway / service / outside; the words matter only while idle.
  const subtitle = [];
  if (n.inbound.requests > 0) subtitle.push(`${fmtRate(n.inbound.rps)} rps in`);
  if (n.inbound.errorRate) subtitle.push(`${fmtPercent(n.inbound.errorRate)} 5xx`);
  if (n.gateway) subtitle.unshift('gateway');
  if (subtitle.length === 0) subtitle.push(n.kind === 'service' ? 'service' : n.kind === 'unknown' ? 'outside the mesh' : n.health === 'idle' ? 'no traffic' : n.app);
  const g = svg(
    'g',
    {
      class: cls,
      transform: `translate(${n.x},${n.y})`,
      'data-node': n.name,
      'data-namespace': n.namespace,
      'data-app': n.app,
      'data-version': n.version,
      'data-kind': n.kind,
      'data-health': n.health,
      'data-proxy-state': n.proxy?.state ?? '',
      onclick: (ev) => {
        ev.stopPropagation();
        select({ node: n.id });
      },
    },
    svg('title', { text: `${n.namespace}/${n.name}${n.proxy ? ` — proxy ${n.proxy.state}` : ''}` }),
    svg('rect', { class: 'box', x: -NODE_W / 2, y: -NODE_H / 2, width: NODE_W, height: NODE_H, rx: 10 }),
    shape(n),
    svg('text', { class: 'name', x: -NODE_W / 2 + 36, y: -4 }, truncate(n.name, 21)),
    svg('text', { class: 'sub', x: -NODE_W / 2 + 36, y: 15 }, truncate(subtitle.join(' · '), 26)),
  );
  if (n.version && n.kind === 'workload' && !n.gateway) {
    g.append(svg('g', { class: 'version-tag', transform: `translate(${NODE_W / 2 - 10},${-NODE_H / 2})` }, svg('rect', { x: -30, y: -9, width: 34, height: 18, rx: 9 }), svg('text', { x: -13, y: 4, 'text-anchor': 'middle' }, n.version)));
  }
  if (proxyBad) {
    g.append(
      svg('g', { class: 'proxy-badge', transform: `translate(${-NODE_W / 2 + 8},${NODE_H / 2})` }, svg('rect', { x: 0, y: -9, width: 50, height: 18, rx: 9 }), svg('text', { x: 25, y: 4, 'text-anchor': 'middle' }, n.proxy.state)),
    );
  }
  return g;
}

/** Kiali's shapes: circle for a workload, diamond for a gateway, triangle for a service without a proxy. */
function shape(n) {
  const x = -NODE_W / 2 + 20;
  if (n.gateway) return svg('path', { class: 'shape', d: `M${x},-10 L${x + 10},0 L${x},10 L${x - 10},0 z` });
  if (n.kind === 'service') return svg('path', { class: 'shape', d: `M${x},-10 L${x + 10},8 L${x - 10},8 z` });
  if (n.kind === 'unknown') return svg('rect', { class: 'shape', x: x - 8, y: -8, width: 16, height: 16, rx: 3 });
  return svg('circle', { class: 'shape', cx: x, cy: 0, r: 9 });
}

function numbersTable(numbers) {
  const rows = [
    ['Requests/s', fmtRate(numbers.rps)],
    ['5xx errors', fmtPercent(numbers.errorRate)],
    ['4xx', fmtPercent(numbers.clientErrorRate)],
    ['p50 latency', fmtMs(numbers.p50)],
    ['p99 latency', fmtMs(numbers.p99)],
    ['mTLS', numbers.mtlsShare === null ? 'unknown' : fmtPercent(numbers.mtlsShare)],
  ];
  if (numbers.tcp) rows.push(['TCP sent', fmtBytes(numbers.tcp.sentBytesPerSecond)], ['TCP received', fmtBytes(numbers.tcp.receivedBytesPerSecond)]);
  const codes = Object.entries(numbers.codes ?? {});
  return h(
    'div',
    {},
    h('table', { class: 'kv' }, rows.map(([k, v]) => h('tr', {}, h('th', {}, k), h('td', {}, v)))),
    codes.length ? h('div', { class: 'codes' }, codes.map(([code, rps]) => h('span', { class: `code c${code[0]}` }, `${code} · ${fmtRate(rps)}/s`))) : null,
  );
}

function details(graph, selected, byId, select) {
  if (selected.node) {
    const n = byId.get(selected.node);
    if (!n) return sideSummary(graph, select);
    const inEdges = graph.edges.filter((e) => e.target === n.id && !e.idle);
    const outEdges = graph.edges.filter((e) => e.source === n.id && !e.idle);
    return h(
      'div',
      { class: 'details', 'data-details': n.name },
      h('h2', {}, n.name),
      h('p', { class: 'muted' }, `${n.kind}${n.namespace ? ` in ${n.namespace}` : ''}${n.version ? ` · version ${n.version}` : ''}${n.gateway ? ' · gateway' : ''}`),
      n.proxy ? proxyBlock(n.proxy) : h('p', { class: 'muted' }, 'No proxy connected for it.'),
      h('h3', {}, 'Inbound'),
      numbersTable(n.inbound),
      n.services.length ? h('h3', {}, 'Serves') : null,
      n.services.map((s) => {
        const [name, ns] = s.split('.');
        return h('p', {}, h('a', { href: `#/services/${encodeURIComponent(ns ?? n.namespace)}/${encodeURIComponent(name)}` }, s));
      }),
      edgeList('Called by', inEdges, (e) => byId.get(e.source)?.name, select),
      edgeList('Calls', outEdges, (e) => byId.get(e.target)?.name, select),
    );
  }
  const e = graph.edges.find((x) => x.id === selected.edge);
  if (!e) return sideSummary(graph, select);
  const s = byId.get(e.source);
  const t = byId.get(e.target);
  return h(
    'div',
    { class: 'details', 'data-details': `${s?.name}->${t?.name}` },
    h('h2', {}, `${s?.name} → ${t?.name}`),
    h('p', { class: 'muted' }, `${e.protocol} · ${e.services.join(', ') || 'unknown service'}${e.serviceShare !== null ? ` · ${fmtPercent(e.serviceShare)} of ${s?.name}'s calls to it` : ''}`),
    numbersTable(e.numbers),
  );
}

function proxyBlock(proxy) {
  return h(
    'div',
    { class: `proxy-block ${proxy.unhealthy ? 'bad' : ''}` },
    h('div', {}, 'Proxy ', h('span', { class: `state ${proxy.state}` }, proxy.state), proxy.waitingSeconds ? ` (waiting ${proxy.waitingSeconds}s for an ACK)` : ''),
    h('div', { class: 'mono small' }, proxy.id),
    proxy.nacks.map((m) => h('div', { class: 'nack' }, m)),
    proxy.scrapeError ? h('div', { class: 'warn small' }, `stats: ${proxy.scrapeError}`) : null,
  );
}

function edgeList(title, edges, nameOf, select) {
  if (!edges.length) return null;
  return [
    h('h3', {}, title),
    h(
      'table',
      { class: 'list' },
      edges.map((e) =>
        h(
          'tr',
          { class: 'clickable', onclick: () => select({ edge: e.id }) },
          h('td', {}, nameOf(e)),
          h('td', { class: 'num' }, `${fmtRate(e.numbers.rps)} rps`),
          h('td', { class: `num ${e.numbers.errorRate ? 'bad' : ''}` }, fmtPercent(e.numbers.errorRate)),
        ),
      ),
    ),
  ];
}

function sideSummary(graph, select) {
  const bad = graph.nodes.filter((n) => n.proxy?.unhealthy);
  const failing = graph.nodes.filter((n) => n.health === 'failure' || n.health === 'degraded');
  return h(
    'div',
    { class: 'details' },
    h('h2', {}, 'Mesh'),
    h('p', { class: 'muted' }, 'Click a workload or an edge for its numbers.'),
    h('h3', {}, 'Proxies out of sync'),
    bad.length
      ? bad.map((n) => h('p', { class: 'bad clickable', onclick: () => select({ node: n.id }) }, `${n.name}: ${n.proxy.state}`))
      : h('p', { class: 'good' }, 'None — every proxy runs the config it was sent.'),
    h('h3', {}, 'Workloads answering with errors'),
    failing.length
      ? failing.map((n) => h('p', { class: `${n.health === 'failure' ? 'bad' : 'warn'} clickable`, onclick: () => select({ node: n.id }) }, `${n.name}: ${fmtPercent(n.inbound.errorRate)} 5xx`))
      : h('p', { class: 'good' }, 'None in this window.'),
  );
}
