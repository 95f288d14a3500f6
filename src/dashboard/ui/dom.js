// Tiny DOM builders for the dashboard (no framework): h() for HTML, svg() for SVG elements.

const SVG_NS = 'http://www.w3.org/2000/svg';

function assign(el, attrs) {
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = String(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function h(tag, attrs, ...children) {
  return append(assign(document.createElement(tag), attrs), children);
}

export function svg(tag, attrs, ...children) {
  return append(assign(document.createElementNS(SVG_NS, tag), attrs), children);
}

export async function getJson(path) {
  const res = await fetch(path, { cache: 'no-store' });
  if (!res.ok) throw new Error(`${path} answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
  return res.json();
}

export function fmtRate(rps) {
  if (rps === null || rps === undefined) return '–';
  if (rps === 0) return '0';
  if (rps < 0.01) return '<0.01';
  return rps < 1 ? rps.toFixed(2) : rps < 100 ? rps.toFixed(1) : String(Math.round(rps));
}

export function fmtPercent(share) {
  if (share === null || share === undefined) return '–';
  const p = share * 100;
  if (p === 0) return '0%';
  return p < 0.1 ? '<0.1%' : p < 10 ? `${p.toFixed(1)}%` : `${Math.round(p)}%`;
}

export function fmtMs(ms) {
  if (ms === null || ms === undefined) return '–';
  if (ms >= 1000) return `${(ms / 1000).toFixed(ms >= 10000 ? 0 : 1)} s`;
  return ms < 10 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`;
}

export function fmtBytes(perSecond) {
  if (!perSecond) return '0 B/s';
  const units = ['B/s', 'KB/s', 'MB/s', 'GB/s'];
  let v = perSecond;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

export function fmtAgo(iso) {
  if (!iso) return '';
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  return `${Math.floor(s / 3600)}h ago`;
}

/** A small padlock icon (mTLS), drawn rather than an emoji: not every system has emoji fonts. */
export function padlock(x, y, size = 11, cls = 'lock') {
  const w = size * 0.82;
  const body = size * 0.55;
  return svg(
    'g',
    { class: cls, transform: `translate(${x},${y})` },
    svg('title', { text: 'mutual TLS' }),
    svg('path', { d: `M${w * 0.22},${size - body} v${-size * 0.2} a${w * 0.28},${w * 0.28} 0 0 1 ${w * 0.56},0 v${size * 0.2}`, fill: 'none', 'stroke-width': 1.6 }),
    svg('rect', { x: 0, y: size - body, width: w, height: body, rx: 1.5 }),
  );
}
