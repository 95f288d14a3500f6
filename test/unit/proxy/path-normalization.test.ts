// The HCM's path sanitation before filters and routing, in Envoy's order (fragment, escaped
// slashes, normalize_path, merge_slashes), and the path-confusion table: which spellings of
// /admin a DENY on exact /admin catches with normalize_path + merge_slashes +
// UNESCAPE_AND_FORWARD, and what Envoy does with each.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileListener } from '../../../src/proxy/config/listener';
import type { HttpConnectionManagerConfig } from '../../../src/proxy/config/model';
import { normalizePath, sanitizePath } from '../../../src/proxy/http/http-stream';
import { lds, TYPES } from './wire';

type Hcm = Pick<HttpConnectionManagerConfig, 'normalizePath' | 'mergeSlashes' | 'escapedSlashes'>;
const HARDENED: Hcm = { normalizePath: true, mergeSlashes: true, escapedSlashes: 'forward' };

/**
 * Envoy (normalize_path, merge_slashes, UNESCAPE_AND_FORWARD; the fragment stripped as Istio
 * configures Envoy) for each spelling: the path filters, RBAC url_path and routing see, which is
 * also the path forwarded upstream.
 */
const BYPASS_TABLE: readonly { request: string; seen: string; deniedByExactAdmin: boolean; why: string }[] = [
  { request: '/admin', seen: '/admin', deniedByExactAdmin: true, why: 'the path itself' },
  { request: '/a/../admin', seen: '/admin', deniedByExactAdmin: true, why: 'normalize_path removes dot segments (RFC 3986 5.2.4)' },
  { request: '//admin', seen: '/admin', deniedByExactAdmin: true, why: 'merge_slashes' },
  { request: '/admin/.', seen: '/admin/', deniedByExactAdmin: false, why: 'normalize_path keeps the trailing slash of a directory; /admin/ is another path (Istio: add "/admin/*")' },
  { request: '/%2Fadmin', seen: '/admin', deniedByExactAdmin: true, why: 'UNESCAPE_AND_FORWARD makes %2F a slash, merge_slashes the rest' },
  { request: '/a%2F..%2Fadmin', seen: '/admin', deniedByExactAdmin: true, why: 'unescaped first, then the dot segments go' },
  { request: '/a/%2e%2e/admin', seen: '/admin', deniedByExactAdmin: true, why: 'normalize_path decodes unreserved characters: %2e is a dot' },
  { request: '/%61dmin', seen: '/admin', deniedByExactAdmin: true, why: 'normalize_path decodes unreserved characters' },
  { request: '/a\\..\\admin', seen: '/admin', deniedByExactAdmin: true, why: 'normalize_path treats a backslash as a slash' },
  { request: '/ADMIN', seen: '/ADMIN', deniedByExactAdmin: false, why: 'paths are case-sensitive in Envoy and Istio' },
  { request: '/admin?x', seen: '/admin?x', deniedByExactAdmin: true, why: 'url_path matches the path without its query' },
  { request: '/admin#frag', seen: '/admin', deniedByExactAdmin: true, why: 'the fragment is stripped before anything sees the path' },
  { request: '/admin;param', seen: '/admin;param', deniedByExactAdmin: false, why: 'Envoy does not strip path parameters; /admin;param is another path' },
];

describe('path sanitation (Envoy order)', () => {
  it('leaves paths alone when nothing is configured, except the fragment', () => {
    const none: Hcm = { normalizePath: false, mergeSlashes: false };
    assert.deepEqual(sanitizePath('/a/../b//c%2Fd?q=/../', none), { path: '/a/../b//c%2Fd?q=/../', action: 'continue' });
    assert.deepEqual(sanitizePath('/a#frag', none), { path: '/a', action: 'continue' });
  });

  it('path_with_escaped_slashes_action: keep, reject, redirect, forward (case-insensitive, path only)', () => {
    assert.deepEqual(sanitizePath('/a%2fb', { normalizePath: false, mergeSlashes: false, escapedSlashes: 'keep' }), { path: '/a%2fb', action: 'continue' });
    assert.equal(sanitizePath('/a%2Fb', { normalizePath: false, mergeSlashes: false, escapedSlashes: 'reject' }).action, 'reject');
    assert.equal(sanitizePath('/a%5cb', { normalizePath: false, mergeSlashes: false, escapedSlashes: 'reject' }).action, 'reject');
    assert.equal(sanitizePath('/a?next=%2F', { normalizePath: false, mergeSlashes: false, escapedSlashes: 'reject' }).action, 'continue', 'the query is not the path');
    assert.deepEqual(sanitizePath('/a%2F%2Fb?x=%2F', { normalizePath: true, mergeSlashes: true, escapedSlashes: 'redirect' }), { path: '/a/b?x=%2F', action: 'redirect' });
    assert.deepEqual(sanitizePath('/a%5C..%5Cb', { normalizePath: true, mergeSlashes: false, escapedSlashes: 'forward' }), { path: '/b', action: 'continue' });
    assert.deepEqual(sanitizePath('/plain', { normalizePath: true, mergeSlashes: true, escapedSlashes: 'redirect' }), { path: '/plain', action: 'continue' }, 'nothing escaped: no redirect');
  });

  it('normalize_path: dot segments, backslashes, unreserved escapes; other escapes stay', () => {
    assert.equal(normalizePath('/a/b/../c', true, false), '/a/c');
    assert.equal(normalizePath('/../../etc/passwd', true, false), '/etc/passwd');
    assert.equal(normalizePath('/..', true, false), '/');
    assert.equal(normalizePath('/foo/bar/..', true, false), '/foo/');
    assert.equal(normalizePath('/foo/./', true, false), '/foo/');
    assert.equal(normalizePath('/foo/..bar', true, false), '/foo/..bar', 'only whole segments are dots');
    assert.equal(normalizePath('/%7Euser/%41', true, false), '/~user/A');
    assert.equal(normalizePath('/a%20b/%2F', true, false), '/a%20b/%2F', 'reserved and unsafe escapes are kept');
    assert.equal(normalizePath('/a//../b', true, true), '/a/b', 'dots first, then merge (Envoy order)');
    assert.equal(normalizePath('/a//b?x=//', false, true), '/a/b?x=//');
  });

  it('the bypass table: what a DENY on exact /admin catches', () => {
    for (const row of BYPASS_TABLE) {
      const { path, action } = sanitizePath(row.request, HARDENED);
      assert.equal(action, 'continue', row.request);
      assert.equal(path, row.seen, `${row.request}: ${row.why}`);
      const q = path.indexOf('?');
      assert.equal((q < 0 ? path : path.slice(0, q)) === '/admin', row.deniedByExactAdmin, `${row.request}: ${row.why}`);
    }
  });

  it('the HCM compiles path_with_escaped_slashes_action (and refuses unknown values)', () => {
    const hcm = (action: string) =>
      compileListener(
        lds({
          name: 'l',
          address: { socket_address: { address: '0.0.0.0', port_value: 80 } },
          filter_chains: [
            {
              filters: [
                {
                  name: 'envoy.filters.network.http_connection_manager',
                  typed_config: {
                    '@type': TYPES.hcm,
                    stat_prefix: 'h',
                    normalize_path: true,
                    merge_slashes: true,
                    path_with_escaped_slashes_action: action,
                    route_config: { virtual_hosts: [] },
                    http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': TYPES.router } }],
                  },
                },
              ],
            },
          ],
        }),
        'v1',
      );
    for (const [wire, model] of [
      ['UNESCAPE_AND_FORWARD', 'forward'],
      ['UNESCAPE_AND_REDIRECT', 'redirect'],
      ['REJECT_REQUEST', 'reject'],
      ['KEEP_UNCHANGED', 'keep'],
      ['IMPLEMENTATION_SPECIFIC_DEFAULT', 'keep'],
    ]) {
      const r = hcm(wire);
      assert.ok(r.valid, r.valid ? '' : r.errors.join('\n'));
      const t = r.valid ? r.result.filterChains[0].terminal : undefined;
      assert.equal(t?.kind === 'http' ? t.escapedSlashes : undefined, model, wire);
      assert.equal(t?.kind === 'http' && t.normalizePath && t.mergeSlashes, true);
    }
  });
});
