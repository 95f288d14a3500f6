// Authorization through a real Weft proxy driven by hand-written, Istio-shaped RBAC config over
// real xDS: allow-nothing, ALLOW on method and path, DENY with notPaths, header conditions,
// ipBlocks and remoteIpBlocks, AUDIT in the access log, dry-run (shadow) rules, the
// path-confusion table against a DENY on /admin, escaped-slash actions, and network RBAC closing
// TCP connections.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Json } from '../../src/proxy/config/validation';
import { startBackend, waitFor, type Backend, type BackendEcho } from './proxy-harness';
import { httpListener, httpRbac, rawRequest, startHandWrittenProxy, staticCluster, tcpListener, TYPE, type HandWrittenProxy } from './proxy-authz-harness';

const any = { any: true };
const path_ = (m: Json) => ({ url_path: { path: m } });
const header = (name: string, m: Json) => ({ header: { name, string_match: m } });

/** The policy shape Istio's translator emits: one named policy per rule. */
function rules(action: string, policies: Record<string, { permissions: Json[]; principals: Json[] }>): Json {
  return { rules: { action, policies } };
}

const PORTS = {
  allowNothing: 18001,
  allowGet: 18002,
  denyNotPublic: 18003,
  whenHeader: 18004,
  ipBlocks: 18005,
  audit: 18006,
  dryRun: 18007,
  normalized: 18008,
  rejectEscaped: 18009,
  redirectEscaped: 18010,
  tcpDenied: 18011,
  tcpAllowed: 18012,
};

describe('proxy authorization (RBAC)', () => {
  let backend: Backend;
  let tcpBackend: net.Server;
  let tcpConnections = 0;
  let proxy: HandWrittenProxy;
  let logDir: string;
  let auditLog: string;

  before(async () => {
    backend = await startBackend('backend');
    tcpBackend = net.createServer((s) => {
      tcpConnections++;
      s.on('error', () => undefined);
      s.pipe(s);
    });
    await new Promise<void>((r) => tcpBackend.listen(0, '127.0.0.1', r));
    const tcpPort = (tcpBackend.address() as net.AddressInfo).port;
    logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-authz-'));
    auditLog = path.join(logDir, 'access.log');
    const cluster = 'backend';
    const listeners: Json[] = [
      // Istio: an AuthorizationPolicy with action ALLOW and no rules ("allow-nothing").
      httpListener('allow-nothing', PORTS.allowNothing, cluster, { filters: [httpRbac({ rules: {} })] }),
      httpListener('allow-get', PORTS.allowGet, cluster, {
        filters: [
          httpRbac(
            rules('ALLOW', {
              'ns[default]-policy[allow-get]-rule[0]': {
                permissions: [{ and_rules: { rules: [{ or_rules: { rules: [header(':method', { exact: 'GET' })] } }, { or_rules: { rules: [path_({ prefix: '/api/' })] } }] } }],
                principals: [{ and_ids: { ids: [any] } }],
              },
            }),
          ),
        ],
      }),
      // DENY to: notPaths ["/public/*"].
      httpListener('deny-not-public', PORTS.denyNotPublic, cluster, {
        filters: [
          httpRbac(
            rules('DENY', {
              'ns[default]-policy[deny-private]-rule[0]': {
                permissions: [{ and_rules: { rules: [{ not_rule: { or_rules: { rules: [path_({ prefix: '/public/' })] } } }] } }],
                principals: [{ and_ids: { ids: [any] } }],
              },
            }),
          ),
        ],
      }),
      // when: request.headers[x-token] in ["secret"].
      httpListener('when-header', PORTS.whenHeader, cluster, {
        filters: [
          httpRbac(
            rules('ALLOW', {
              'ns[default]-policy[token]-rule[0]': { permissions: [any], principals: [{ and_ids: { ids: [{ or_ids: { ids: [{ header: { name: 'x-token', exact_match: 'secret' } }] } }] } }] },
            }),
          ),
        ],
      }),
      // source ipBlocks (direct_remote_ip) and remoteIpBlocks (remote_ip, from x-forwarded-for).
      httpListener('ip-blocks', PORTS.ipBlocks, cluster, {
        hcm: { use_remote_address: false, xff_num_trusted_hops: 0 },
        filters: [
          httpRbac(
            rules('ALLOW', {
              'ns[default]-policy[ip]-rule[0]': { permissions: [path_({ prefix: '/loopback' })], principals: [{ direct_remote_ip: { address_prefix: '127.0.0.0', prefix_len: 8 } }] },
              'ns[default]-policy[ip]-rule[1]': { permissions: [path_({ prefix: '/vpn' })], principals: [{ direct_remote_ip: { address_prefix: '10.0.0.0', prefix_len: 8 } }] },
              'ns[default]-policy[ip]-rule[2]': { permissions: [path_({ prefix: '/office' })], principals: [{ remote_ip: { address_prefix: '203.0.113.0', prefix_len: 24 } }] },
            }),
          ),
        ],
      }),
      // AUDIT (action LOG) ahead of an allow-all, with an access log reading the hint.
      httpListener('audit', PORTS.audit, cluster, {
        hcm: {
          access_log: [
            {
              name: 'envoy.access_loggers.file',
              typed_config: { '@type': TYPE.fileLog, path: auditLog, log_format: { text_format_source: { inline_string: '%REQ(:PATH)% %RESPONSE_CODE% audit=%DYNAMIC_METADATA(envoy.common:access_log_hint)%\n' } } },
            },
          ],
        },
        filters: [httpRbac(rules('LOG', { 'ns[default]-policy[audit]-rule[0]': { permissions: [path_({ prefix: '/audited' })], principals: [any] } }))],
      }),
      // Istio dry-run: the policy only as shadow rules with the istio_dry_run prefix.
      httpListener('dry-run', PORTS.dryRun, cluster, {
        filters: [
          httpRbac({
            shadow_rules: { action: 'DENY', policies: { 'ns[default]-policy[dry]-rule[0]': { permissions: [path_({ prefix: '/secret' })], principals: [any] } } },
            shadow_rules_stat_prefix: 'istio_dry_run_allow_',
          }),
        ],
      }),
      httpListener('normalized', PORTS.normalized, cluster, {
        hcm: { normalize_path: true, merge_slashes: true, path_with_escaped_slashes_action: 'UNESCAPE_AND_FORWARD' },
        filters: [httpRbac(rules('DENY', { 'ns[default]-policy[admin]-rule[0]': { permissions: [path_({ exact: '/admin' })], principals: [any] } }))],
      }),
      httpListener('reject-escaped', PORTS.rejectEscaped, cluster, { hcm: { path_with_escaped_slashes_action: 'REJECT_REQUEST' }, filters: [] }),
      httpListener('redirect-escaped', PORTS.redirectEscaped, cluster, {
        hcm: { normalize_path: true, merge_slashes: true, path_with_escaped_slashes_action: 'UNESCAPE_AND_REDIRECT' },
        filters: [],
      }),
      tcpListener('tcp-denied', PORTS.tcpDenied, 'tcp-backend', [
        {
          name: 'envoy.filters.network.rbac',
          typed_config: {
            '@type': TYPE.networkRbac,
            stat_prefix: 'tcp.',
            rules: { action: 'DENY', policies: { 'ns[default]-policy[no-loopback]-rule[0]': { permissions: [any], principals: [{ direct_remote_ip: { address_prefix: '127.0.0.0', prefix_len: 8 } }] } } },
          },
        },
      ]),
      tcpListener('tcp-allowed', PORTS.tcpAllowed, 'tcp-backend', [
        {
          name: 'envoy.filters.network.rbac',
          typed_config: {
            '@type': TYPE.networkRbac,
            stat_prefix: 'tcp_allowed.',
            rules: { action: 'ALLOW', policies: { 'ns[default]-policy[loopback]-rule[0]': { permissions: [any], principals: [{ direct_remote_ip: { address_prefix: '127.0.0.0', prefix_len: 8 } }] } } },
          },
        },
      ]),
    ];
    proxy = await startHandWrittenProxy(
      { listeners, clusters: [staticCluster(cluster, backend.address, backend.port), staticCluster('tcp-backend', '127.0.0.1', tcpPort)] },
      Object.values(PORTS),
    );
  });

  after(async () => {
    await proxy?.close();
    await backend?.close();
    await new Promise<void>((r) => (tcpBackend ? tcpBackend.close(() => r()) : r()));
    if (logDir) fs.rmSync(logDir, { recursive: true, force: true });
  });

  /** A raw request to the listener named after the PORTS key (allowGet -> allow-get). */
  const get = (listener: keyof typeof PORTS, target: string, o?: Parameters<typeof rawRequest>[2]) => rawRequest(proxy.port(kebab(listener)), target, o);

  it('allow-nothing denies every request with 403 "RBAC: access denied"', async () => {
    const before = backend.received.length;
    const res = await get('allowNothing', '/anything');
    assert.equal(res.status, 403);
    assert.equal(res.body, 'RBAC: access denied');
    assert.equal(backend.received.length, before, 'the backend never saw it');
    const record = await waitFor(() => proxy.records.find((r) => r.listener === 'allow-nothing'));
    assert.equal(record.details, 'rbac_access_denied_matched_policy[none]');
    assert.match(await proxy.stats(), /^http\.allow-nothing\.rbac\.denied: 1$/m);
  });

  it('ALLOW GET on /api/*: other methods and paths are denied', async () => {
    const ok = await get('allowGet', '/api/books');
    assert.equal(ok.status, 200);
    assert.equal(JSON.parse(ok.body).path, '/api/books');
    assert.equal((await get('allowGet', '/api/books', { method: 'DELETE' })).status, 403);
    assert.equal((await get('allowGet', '/admin')).status, 403);
    const stats = await proxy.stats();
    assert.match(stats, /^http\.allow-get\.rbac\.allowed: 1$/m);
    assert.match(stats, /^http\.allow-get\.rbac\.denied: 2$/m);
  });

  it('DENY with notPaths: only /public/* gets through, the denial names the policy', async () => {
    assert.equal((await get('denyNotPublic', '/public/index.html')).status, 200);
    const denied = await get('denyNotPublic', '/private/data');
    assert.equal(denied.status, 403);
    const record = await waitFor(() => proxy.records.find((r) => r.listener === 'deny-not-public' && r.status === 403));
    assert.equal(record.details, 'rbac_access_denied_matched_policy[ns[default]-policy[deny-private]-rule[0]]');
  });

  it('a when condition on a request header', async () => {
    assert.equal((await get('whenHeader', '/', { headers: { 'x-token': 'secret' } })).status, 200);
    assert.equal((await get('whenHeader', '/', { headers: { 'x-token': 'guess' } })).status, 403);
    assert.equal((await get('whenHeader', '/')).status, 403);
  });

  it('ipBlocks match the peer; remoteIpBlocks the x-forwarded-for client', async () => {
    assert.equal((await get('ipBlocks', '/loopback')).status, 200, 'the peer is 127.0.0.1');
    assert.equal((await get('ipBlocks', '/vpn')).status, 403, '127.0.0.1 is not in 10/8');
    assert.equal((await get('ipBlocks', '/vpn', { headers: { 'x-forwarded-for': '10.1.2.3' } })).status, 403, 'x-forwarded-for does not change the peer');
    assert.equal((await get('ipBlocks', '/office')).status, 403, 'no x-forwarded-for: the client is the peer');
    assert.equal((await get('ipBlocks', '/office', { headers: { 'x-forwarded-for': '203.0.113.9' } })).status, 200);
    // use_remote_address false, no trusted hops: the last entry is the client.
    assert.equal((await get('ipBlocks', '/office', { headers: { 'x-forwarded-for': '203.0.113.9, 198.51.100.1' } })).status, 403);
  });

  it('AUDIT (action LOG) never denies and marks the access log line', async () => {
    assert.equal((await get('audit', '/audited/1')).status, 200);
    assert.equal((await get('audit', '/plain')).status, 200);
    const audited = await waitFor(() => proxy.records.find((r) => r.listener === 'audit' && r.path === '/audited/1'));
    const plain = await waitFor(() => proxy.records.find((r) => r.listener === 'audit' && r.path === '/plain'));
    assert.equal(audited.rbacAudit, true);
    assert.equal(plain.rbacAudit, undefined);
    const lines = await waitFor(() => {
      const text = fs.existsSync(auditLog) ? fs.readFileSync(auditLog, 'utf8') : '';
      return text.split('\n').filter(Boolean).length >= 2 ? text : undefined;
    });
    assert.match(lines, /^\/audited\/1 200 audit=true$/m);
    assert.match(lines, /^\/plain 200 audit=false$/m);
  });

  it('dry-run (shadow) rules are counted and published, never enforced', async () => {
    assert.equal((await get('dryRun', '/secret')).status, 200);
    assert.equal((await get('dryRun', '/open')).status, 200);
    const stats = await proxy.stats();
    assert.match(stats, /^http\.dry-run\.rbac\.istio_dry_run_allow_shadow_denied: 1$/m);
    assert.match(stats, /^http\.dry-run\.rbac\.istio_dry_run_allow_shadow_allowed: 1$/m);
    const record = await waitFor(() => proxy.records.find((r) => r.listener === 'dry-run' && r.path === '/secret'));
    assert.deepEqual(record.dynamicMetadata?.get('envoy.filters.http.rbac'), {
      istio_dry_run_allow_shadow_engine_result: 'denied',
      istio_dry_run_allow_shadow_effective_policy_id: 'ns[default]-policy[dry]-rule[0]',
    });
  });

  it('no spelling of /admin gets past a DENY on exact /admin (normalize_path, merge_slashes, UNESCAPE_AND_FORWARD)', async () => {
    // Envoy's behaviour for each (see test/unit/proxy/path-normalization.test.ts): denied, or
    // forwarded as a different path that is exactly what RBAC evaluated.
    const table: { target: string; denied: boolean; upstream?: string }[] = [
      { target: '/admin', denied: true },
      { target: '/a/../admin', denied: true },
      { target: '//admin', denied: true },
      { target: '/%2Fadmin', denied: true },
      { target: '/%2fadmin', denied: true },
      { target: '/a%2F..%2Fadmin', denied: true },
      { target: '/a/%2e%2e/admin', denied: true },
      { target: '/%61dmin', denied: true },
      { target: '/admin?x', denied: true },
      { target: '/admin#frag', denied: true },
      { target: '/a/..%5Cadmin', denied: true },
      { target: '/admin/.', denied: false, upstream: '/admin/' },
      { target: '/ADMIN', denied: false, upstream: '/ADMIN' },
      { target: '/admin;param', denied: false, upstream: '/admin;param' },
    ];
    for (const row of table) {
      const res = await get('normalized', row.target);
      if (row.denied) {
        assert.equal(res.status, 403, `${row.target} must be denied`);
        assert.equal(res.body, 'RBAC: access denied');
      } else {
        assert.equal(res.status, 200, `${row.target} is another path in Envoy`);
        assert.equal((JSON.parse(res.body) as BackendEcho).path, row.upstream, `${row.target} is forwarded as RBAC saw it`);
      }
    }
  });

  it('REJECT_REQUEST answers 400; UNESCAPE_AND_REDIRECT sends the client to the unescaped path', async () => {
    const rejected = await get('rejectEscaped', '/files/a%2Fb');
    assert.equal(rejected.status, 400);
    assert.equal((await get('rejectEscaped', '/files/a?x=%2F')).status, 200, 'the query string is not the path');
    const redirected = await get('redirectEscaped', '/files/a%2F%2Fb?x=1');
    assert.equal(redirected.status, 307);
    assert.equal(redirected.headers.location, '/files/a/b?x=1');
    const stats = await proxy.stats();
    assert.match(stats, /^http\.reject-escaped\.downstream_rq_failed_path_normalization: 1$/m);
    assert.match(stats, /^http\.redirect-escaped\.downstream_rq_redirected_with_normalized_path: 1$/m);
  });

  it('network RBAC closes a denied TCP connection before any upstream is dialled', async () => {
    const before = tcpConnections;
    const denied = await tcpExchange(proxy.port('tcp-denied'), 'hello');
    assert.equal(denied, '', 'closed without a byte');
    assert.equal(tcpConnections, before, 'the upstream was never dialled');
    const allowed = await tcpExchange(proxy.port('tcp-allowed'), 'hello');
    assert.equal(allowed, 'hello');
    const stats = await proxy.stats();
    assert.match(stats, /^tcp\.rbac\.denied: 1$/m);
    assert.match(stats, /^tcp_allowed\.rbac\.allowed: 1$/m);
    const record = await waitFor(() => proxy.records.find((r) => r.listener === 'tcp-denied'));
    assert.equal(record.details, 'rbac_access_denied_matched_policy[ns[default]-policy[no-loopback]-rule[0]]');
  });
});

function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** Connects, writes `text`, half-closes, and resolves with everything read until the close. */
function tcpExchange(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, allowHalfOpen: false });
    const chunks: Buffer[] = [];
    s.on('data', (c) => {
      chunks.push(c);
      if (Buffer.concat(chunks).toString() === text) s.end();
    });
    s.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' ? undefined : reject(err)));
    s.on('close', () => resolve(Buffer.concat(chunks).toString()));
    s.write(text);
  });
}
