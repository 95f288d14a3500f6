// Which proxies the dashboard and `weft proxy-status` show in red.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { proxyHealth } from '../../../src/dashboard/proxy-health';
import type { TypeSyncStatus } from '../../../src/xds/server/ads-connection';

const now = Date.parse('2024-01-01T00:01:00Z');
const type = (t: Partial<TypeSyncStatus>): TypeSyncStatus => ({ typeUrl: 'x', type: 'LDS', state: 'SYNCED', resourceNames: ['*'], resourcesSent: 1, ...t });

describe('proxyHealth', () => {
  it('is SYNCED when everything sent was ACKed', () => {
    assert.deepEqual(proxyHealth({ types: [type({}), type({ type: 'CDS' })] }, now), { state: 'SYNCED', nacks: [], unhealthy: false });
  });

  it('is SYNCING right after a push and STALE once the ACK is overdue', () => {
    const recent = proxyHealth({ types: [type({ state: 'STALE', sentAt: '2024-01-01T00:00:55Z' })] }, now, 15_000);
    assert.deepEqual([recent.state, recent.unhealthy, recent.waitingSeconds], ['SYNCING', false, 5]);
    const overdue = proxyHealth({ types: [type({ state: 'STALE', sentAt: '2024-01-01T00:00:30Z' })] }, now, 15_000);
    assert.deepEqual([overdue.state, overdue.unhealthy, overdue.waitingSeconds], ['STALE', true, 30]);
  });

  it("is NACK with the proxy's error when it rejected its latest config", () => {
    const h = proxyHealth(
      { types: [type({}), type({ type: 'RDS', state: 'NACK', lastNack: { version: 'v7', nonce: '3', message: 'route x: bad regex', at: '' } })] },
      now,
    );
    assert.deepEqual(h, { state: 'NACK', nacks: ['RDS v7: route x: bad regex'], unhealthy: true });
  });

  it('is NOT_SENT before anything was sent', () => {
    assert.equal(proxyHealth({ types: [type({ state: 'NOT_SENT' })] }, now).state, 'NOT_SENT');
  });
});
