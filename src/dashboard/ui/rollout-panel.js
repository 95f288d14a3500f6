// The rollouts panel (on the config page): each progressive rollout (`weft rollout`) with its
// step, the weights it set, what it observed of the new subset against its thresholds, its state,
// and its last progress lines; health-gated applies (`weft apply --watch`) below. From
// /api/v1/rollouts and /api/v1/apply-watches.
import { fmtMs, fmtPercent, getJson, h } from './dom.js';

export function createRolloutPanel() {
  const el = h('div', { 'data-panel': 'rollouts' });
  return {
    el,
    async refresh() {
      const [{ rollouts }, { watches }] = await Promise.all([getJson('/api/v1/rollouts'), getJson('/api/v1/apply-watches')]);
      if (!rollouts.length && !watches.length) {
        el.replaceChildren();
        return;
      }
      el.replaceChildren(h('h1', {}, 'Rollouts'), rolloutTable(rollouts.slice(0, 8)), watches.length ? watchTable(watches.slice(0, 5)) : '');
    },
  };
}

const STATE_CLASS = { running: 'tag', completed: 'tag ok', healthy: 'tag ok', unjudged: 'tag', 'rolled-back': 'tag bad', aborted: 'tag bad', failed: 'tag bad', watching: 'tag' };

function over(value, max) {
  return value !== null && value !== undefined && value > max;
}

function rolloutTable(rollouts) {
  return h(
    'table',
    { class: 'grid-table', 'data-table': 'rollouts' },
    h('thead', {}, h('tr', {}, ['Service', 'To', 'Step', 'Weights', 'Error rate', 'p99', 'Requests', 'State', 'Last'].map((c) => h('th', {}, c)))),
    h(
      'tbody',
      {},
      rollouts.map((r) => {
        const o = r.observed;
        const last = r.events[r.events.length - 1];
        return h(
          'tr',
          { 'data-rollout': `${r.namespace}/${r.service}`, 'data-state': r.state, class: ['rolled-back', 'aborted', 'failed'].includes(r.state) ? 'bad-row' : '' },
          h('td', {}, `${r.namespace}/${r.service}`),
          h('td', {}, r.to),
          h('td', {}, r.stepIndex >= 0 ? `${r.steps[r.stepIndex]}% (${r.stepIndex + 1}/${r.steps.length})` : '—'),
          h('td', { class: 'mono small' }, r.weights.map((w) => `${w.subset || '(all)'} ${w.weight}`).join(' / ')),
          h('td', { class: over(o?.errorRate, r.thresholds.maxErrorRate) ? 'warn' : '' }, `${o ? fmtPercent(o.errorRate) : '—'} / max ${fmtPercent(r.thresholds.maxErrorRate)}`),
          h('td', { class: over(o?.p99, r.thresholds.maxP99Ms) ? 'warn' : '' }, `${o ? fmtMs(o.p99) : '—'} / max ${fmtMs(r.thresholds.maxP99Ms)}`),
          h('td', {}, o ? `${o.requests} (min ${r.thresholds.minRequests})` : '—'),
          h('td', {}, h('span', { class: STATE_CLASS[r.state] ?? 'tag' }, r.state)),
          h('td', { class: 'small muted' }, r.reason ?? last?.text ?? ''),
        );
      }),
    ),
  );
}

function watchTable(watches) {
  return h(
    'table',
    { class: 'grid-table', 'data-table': 'apply-watches' },
    h('thead', {}, h('tr', {}, ['Apply', 'Services', 'Window', 'State', 'Last'].map((c) => h('th', {}, c)))),
    h(
      'tbody',
      {},
      watches.map((w) =>
        h(
          'tr',
          { 'data-watch': w.id, 'data-state': w.state, class: w.state === 'rolled-back' ? 'bad-row' : '' },
          h('td', {}, `${w.version} (after ${w.previousVersion})`),
          h('td', { class: 'small' }, w.services.join(', ') || '—'),
          h('td', {}, `${w.windowSeconds}s`),
          h('td', {}, h('span', { class: STATE_CLASS[w.state] ?? 'tag' }, w.state)),
          h('td', { class: 'small muted' }, w.reason ?? w.events[w.events.length - 1]?.text ?? ''),
        ),
      ),
    ),
  );
}
