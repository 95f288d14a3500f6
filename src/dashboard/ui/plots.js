// Line plots as plain SVG: time on x, one or more series on y, gaps where a value is missing.

import { svg, h } from './dom.js';

const W = 600;
const H = 230;
const PAD = { top: 14, right: 16, bottom: 28, left: 62 };

export const PALETTE = ['#2563eb', '#db2777', '#059669', '#d97706', '#7c3aed', '#0891b2', '#dc2626', '#65a30d'];

/** A "nice" upper bound for the axis: 1, 2 or 5 times a power of ten. */
function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function clock(t) {
  const d = new Date(t);
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}:${String(d.getSeconds()).padStart(2, '0')}`;
}

/**
 * series: [{ name, color, points: [{t, v}] }]; format(v) labels the y axis.
 * Returns a figure element with the title, the plot and a legend.
 */
export function linePlot({ title, series, format, id, yMax }) {
  const all = series.flatMap((s) => s.points).filter((p) => p.v !== null && p.v !== undefined);
  const ts = series.flatMap((s) => s.points.map((p) => p.t));
  const figure = h('figure', { class: 'plot', 'data-plot': id });
  figure.append(h('figcaption', {}, title));
  if (ts.length < 2) {
    figure.append(h('p', { class: 'empty small' }, 'Not enough data yet (one point per scrape round).'));
    return figure;
  }
  const t0 = Math.min(...ts);
  const t1 = Math.max(...ts);
  const top = yMax ?? niceMax(Math.max(0, ...all.map((p) => p.v)));
  const x = (t) => PAD.left + ((t - t0) / Math.max(1, t1 - t0)) * (W - PAD.left - PAD.right);
  const y = (v) => H - PAD.bottom - (v / top) * (H - PAD.top - PAD.bottom);
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'plot-svg' });
  for (let i = 0; i <= 4; i++) {
    const v = (top * i) / 4;
    root.append(svg('line', { class: 'grid', x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v) }), svg('text', { class: 'axis', x: PAD.left - 8, y: y(v) + 4, 'text-anchor': 'end' }, format(v)));
  }
  for (let i = 0; i <= 3; i++) {
    const t = t0 + ((t1 - t0) * i) / 3;
    root.append(svg('text', { class: 'axis', x: x(t), y: H - 6, 'text-anchor': i === 0 ? 'start' : i === 3 ? 'end' : 'middle' }, clock(t)));
  }
  series.forEach((s, i) => {
    let d = '';
    let pen = false;
    for (const p of s.points) {
      if (p.v === null || p.v === undefined) {
        pen = false;
        continue;
      }
      d += `${pen ? 'L' : 'M'}${x(p.t).toFixed(1)},${y(Math.min(p.v, top)).toFixed(1)}`;
      pen = true;
    }
    root.append(svg('path', { class: 'series', d, stroke: s.color ?? PALETTE[i % PALETTE.length], 'data-series': s.name }));
  });
  figure.append(root);
  figure.append(
    h(
      'div',
      { class: 'plot-legend' },
      series.map((s, i) => h('span', {}, h('span', { class: 'dot', style: `background:${s.color ?? PALETTE[i % PALETTE.length]}` }), s.name)),
    ),
  );
  return figure;
}
