// The collector against real HTTP servers on loopback: what it records from a proxy's metrics,
// and how it survives proxies that are down, slow, broken or too talkative.
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { scrapeUrl } from '../../../src/dashboard/dashboard-service';
import { StatsCollector, type ScrapeTarget } from '../../../src/dashboard/stats-collector';
import { sumTicks } from '../../../src/dashboard/traffic-history';
import { istioExposition } from './istio-exposition';

describe('StatsCollector', () => {
  let requests = 100;
  const servers: http.Server[] = [];
  const urls: Record<string, string> = {};

  const serve = async (name: string, handler: http.RequestListener) => {
    const server = http.createServer(handler);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push(server);
    urls[name] = `http://127.0.0.1:${(server.address() as AddressInfo).port}/stats/prometheus`;
  };

  before(async () => {
    await serve('proxy', (_req, res) => res.end(istioExposition([{ reporter: 'destination', from: 'productpage-v1', to: 'reviews-v1', codes: { '200': requests } }])));
    await serve('broken', (_req, res) => res.writeHead(500).end('oops'));
    // Accepts the request and never answers.
    await serve('silent', () => undefined);
    await serve('huge', (_req, res) => res.end('x'.repeat(64 * 1024)));
    // A port nobody listens on.
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    urls.down = `http://127.0.0.1:${(closed.address() as AddressInfo).port}/stats/prometheus`;
    await new Promise((resolve) => closed.close(resolve));
  });

  after(async () => {
    for (const s of servers) {
      s.closeAllConnections();
      await new Promise((resolve) => s.close(resolve));
    }
  });

  it("records one proxy's traffic between rounds and reports why the others failed, within the timeout", async () => {
    const targets: ScrapeTarget[] = Object.values(urls).map((url) => ({ url, connectionIds: [url] }));
    let now = 1_000_000;
    const collector = new StatsCollector({ targets: () => targets, timeoutMs: 300, maxBytes: 16 * 1024, concurrency: 2, now: () => now });
    const started = Date.now();
    assert.equal(await collector.collectOnce(), undefined, 'the first round only sets the baselines');
    requests += 30;
    now += 5000;
    const tick = await collector.collectOnce();
    assert.ok(Date.now() - started < 3000, 'a silent proxy costs one timeout per round');
    assert.equal(tick?.seconds, 5);
    const totals = sumTicks([tick!]);
    assert.deepEqual(
      [...totals.edges.values()].map((e) => [e.identity.sourceWorkload, e.identity.destinationWorkload, e.traffic.requests]),
      [['productpage-v1', 'reviews-v1', 30]],
    );
    assert.equal(collector.status(urls.proxy)?.ok, true);
    assert.equal(collector.status(urls.proxy)?.edges, 1);
    assert.match(collector.status(urls.broken)?.error ?? '', /HTTP 500/);
    assert.match(collector.status(urls.silent)?.error ?? '', /within 300 ms/);
    assert.match(collector.status(urls.huge)?.error ?? '', /larger than 16384 bytes/);
    assert.match(collector.status(urls.down)?.error ?? '', /ECONNREFUSED/);
    await collector.stop();
  });

  it('stops without waiting for a scrape in flight', async () => {
    const collector = new StatsCollector({ targets: () => [{ url: urls.silent, connectionIds: [] }], timeoutMs: 60_000 });
    const round = collector.collectOnce();
    const started = Date.now();
    await collector.stop();
    await round;
    assert.ok(Date.now() - started < 1000);
  });
});

describe('scrapeUrl', () => {
  it("uses the proxy's first workload address, and the stream's peer for a wildcard one", () => {
    assert.equal(scrapeUrl({ ips: ['127.0.10.4'] }, '127.0.0.1:5555'), 'http://127.0.10.4:15090/stats/prometheus');
    assert.equal(scrapeUrl({ ips: ['0.0.0.0'] }, 'ipv4:10.1.2.3:41000'), 'http://10.1.2.3:15090/stats/prometheus');
    assert.equal(scrapeUrl(undefined, '[::ffff:127.0.0.1]:41000'), 'http://127.0.0.1:15090/stats/prometheus');
    assert.equal(scrapeUrl({ ips: ['fd00::5'] }, ''), 'http://[fd00::5]:15090/stats/prometheus');
    assert.equal(scrapeUrl({ ips: [] }, 'garbage'), undefined);
  });
});
