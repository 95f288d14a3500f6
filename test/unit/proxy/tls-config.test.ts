// Compiling the security config Istio sends: UpstreamTlsContext / DownstreamTlsContext with SDS
// secret names (resolved later, per handshake), Envoy's transport_socket_matches selection rules,
// EDS endpoint metadata, and the NACK wording for what the Weft proxy cannot serve.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileCluster } from '../../../src/proxy/config/cluster';
import { compileLoadAssignment } from '../../../src/proxy/config/endpoints';
import { compileListener } from '../../../src/proxy/config/listener';
import type { CompiledCluster } from '../../../src/proxy/config/model';
import { selectTransportSocket } from '../../../src/proxy/config/upstream-tls';
import type { Json } from '../../../src/proxy/config/validation';
import { SecretStore } from '../../../src/proxy/identity/secret-store';
import { SecretNotReadyError, SecureContextCache } from '../../../src/proxy/identity/secure-contexts';
import { createTestCa } from '../../support/test-ca';
import {
  edsCluster,
  httpConnectionManager,
  istioDownstreamTls,
  istioTransportSocketMatches,
  istioUpstreamTls,
  listener,
  loadAssignment,
  sdsSecret,
  TYPES,
} from '../../support/static-ads';
import { cds, eds, lds } from './wire';

const SERVER_ID = 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews';
const SNI = 'outbound_.9080_.v1_.reviews.default.svc.cluster.local';

function cluster(raw: Json): CompiledCluster {
  const r = compileCluster(cds(raw), 'v1');
  if (!r.valid) assert.fail(r.errors.join('\n'));
  return r.result;
}

function clusterErrors(raw: Json): string[] {
  const r = compileCluster(cds(raw), 'v1');
  assert.equal(r.valid, false, 'expected a NACK');
  return r.valid ? [] : r.errors;
}

function upstreamWith(commonTlsContext: Json): Json {
  return edsCluster('c', { transport_socket: { name: 'tls', typed_config: { '@type': TYPES.upstreamTls, common_tls_context: commonTlsContext } } });
}

describe('UpstreamTlsContext with SDS secrets', () => {
  it('compiles Istio mTLS: SNI, TLS 1.3, ALPN, the agent\'s default and ROOTCA, the peer SAN', () => {
    const c = cluster(edsCluster('outbound|9080|v1|reviews.default.svc.cluster.local', { transport_socket: istioUpstreamTls(SNI, [SERVER_ID]) }));
    const t = c.tls!;
    assert.equal(t.sni, SNI);
    assert.equal(t.minVersion, 'TLSv1.3');
    assert.deepEqual(t.alpn, ['istio-peer-exchange', 'istio']);
    assert.equal(t.certificateSecret?.name, 'default');
    assert.equal(t.validationSecret?.name, 'ROOTCA');
    assert.equal(t.cert, undefined, 'nothing is read at config time');
    assert.equal(t.subjectAltNames.length, 1);
    assert.ok(t.subjectAltNames[0].match(SERVER_ID));
    assert.ok(!t.subjectAltNames[0].match('spiffe://cluster.local/ns/default/sa/other'));
    assert.equal(t.certificateSecret?.path, 'transport_socket.typed_config.common_tls_context.tls_certificate_sds_secret_configs[0]');
  });

  it('refuses secrets delivered over ADS (a gateway credentialName), with a hint', () => {
    const errors = clusterErrors(upstreamWith({ tls_certificate_sds_secret_configs: [{ name: 'kubernetes://bookinfo-cert', sds_config: { ads: {}, resource_api_version: 'V3' } }] }));
    assert.match(errors.join('\n'), /Cluster "c": transport_socket\.typed_config\.common_tls_context\.tls_certificate_sds_secret_configs\[0\]\.sds_config: SDS secret "kubernetes:\/\/bookinfo-cert" is to be delivered over ADS .*hint/);
  });

  it('refuses SDS from another server and names the agent serves do not have', () => {
    const other = { ...sdsSecret('default'), sds_config: { ...sdsSecret('default').sds_config, api_config_source: { api_type: 'GRPC', grpc_services: [{ envoy_grpc: { cluster_name: 'spire-agent' } }] } } };
    assert.match(clusterErrors(upstreamWith({ tls_certificate_sds_secret_configs: [other] })).join('\n'), /must come from the local identity agent .*"sds-grpc"/);
    assert.match(clusterErrors(upstreamWith({ tls_certificate_sds_secret_configs: [sdsSecret('file-cert:/etc/certs/cert.pem~/etc/certs/key.pem')] })).join('\n'), /serves "default" \(the workload certificate\) and "ROOTCA"/);
    assert.match(clusterErrors(upstreamWith({ tls_certificate_sds_secret_configs: [sdsSecret('ROOTCA')] })).join('\n'), /expected "default"/);
    assert.match(clusterErrors(upstreamWith({ validation_context_sds_secret_config: sdsSecret('default') })).join('\n'), /expected "ROOTCA"/);
  });

  it('refuses two certificates, and two ways of validating at once', () => {
    assert.match(
      clusterErrors(upstreamWith({ tls_certificate_sds_secret_configs: [sdsSecret('default')], tls_certificates: [{ certificate_chain: { inline_string: 'x' }, private_key: { inline_string: 'y' } }] })).join('\n'),
      /only one certificate is supported/,
    );
    assert.match(
      clusterErrors(upstreamWith({ validation_context: { trusted_ca: { inline_string: 'x' } }, validation_context_sds_secret_config: sdsSecret('ROOTCA') })).join('\n'),
      /give one of validation_context, validation_context_sds_secret_config/,
    );
  });

  it('refuses transport sockets it does not implement', () => {
    // A type the codec does not know stays an undecoded Any (type_url and bytes).
    const alts = { type_url: 'type.googleapis.com/envoy.extensions.transport_sockets.alts.v3.Alts', value: Buffer.alloc(0) };
    const r = compileCluster(edsCluster('c', { transport_socket_matches: [{ name: 'alts', match: {}, transport_socket: { name: 'envoy.transport_sockets.alts', typed_config: alts } }] }), 'v1');
    const errors = r.valid ? [] : r.errors;
    assert.match(errors.join('\n'), /transport_socket_matches\[0\]\.transport_socket: transport socket "envoy\.transport_sockets\.alts" is not supported/);
  });
});

describe('transport_socket_matches (Envoy\'s rules)', () => {
  const compiled = cluster(edsCluster('outbound|9080||reviews.default.svc.cluster.local', { transport_socket_matches: istioTransportSocketMatches(SNI, [SERVER_ID]) }));
  const matches = compiled.transportSocketMatches!;

  it('compiles every match, in order', () => {
    assert.deepEqual(matches.map((m) => m.name), ['tlsMode-istio', 'tlsMode-disabled']);
    assert.deepEqual(matches[0].match, { tlsMode: 'istio' });
    assert.ok(matches[0].tls?.certificateSecret);
    assert.equal(matches[1].tls, undefined, 'raw_buffer is plaintext');
  });

  it('an endpoint labelled tlsMode=istio gets mTLS; one without metadata gets the empty match (plaintext)', () => {
    assert.equal(selectTransportSocket(matches, compiled.tls, { endpoint: { tlsMode: 'istio' } }), matches[0].tls);
    assert.equal(selectTransportSocket(matches, compiled.tls, undefined), undefined);
    assert.equal(selectTransportSocket(matches, compiled.tls, { endpoint: { tlsMode: 'disabled' } }), undefined);
  });

  it('the first match whose criteria are a subset of the metadata wins; values compare exactly', () => {
    const m = [
      { name: 'a', match: { tlsMode: 'istio', zone: 'z1' }, tls: { systemRoots: false, subjectAltNames: [], alpn: ['a'] } },
      { name: 'b', match: { tlsMode: 'istio' }, tls: { systemRoots: false, subjectAltNames: [], alpn: ['b'] } },
    ];
    assert.equal(selectTransportSocket(m, undefined, { endpoint: { tlsMode: 'istio', zone: 'z1', extra: true } }), m[0].tls);
    assert.equal(selectTransportSocket(m, undefined, { endpoint: { tlsMode: 'istio', zone: 'z2' } }), m[1].tls);
    assert.equal(selectTransportSocket(m, undefined, { endpoint: { tlsMode: 'Istio' } }), undefined, 'no match and no cluster transport socket: plaintext');
  });

  it('falls back to the locality metadata, then to the cluster transport_socket', () => {
    const clusterTls = { systemRoots: false, subjectAltNames: [], alpn: ['cluster'] };
    const m = [{ name: 'istio', match: { tlsMode: 'istio' }, tls: { systemRoots: false, subjectAltNames: [], alpn: ['m'] } }];
    assert.equal(selectTransportSocket(m, clusterTls, { endpoint: { other: 'x' }, locality: { tlsMode: 'istio' } }), m[0].tls);
    assert.equal(selectTransportSocket(m, clusterTls, { endpoint: { other: 'x' } }), clusterTls);
    assert.equal(selectTransportSocket(undefined, clusterTls, { endpoint: { tlsMode: 'istio' } }), clusterTls, 'no matches: the cluster transport socket');
  });
});

describe('EDS endpoint metadata', () => {
  it('reads envoy.transport_socket_match from endpoints and localities, ignoring other namespaces', () => {
    const raw = loadAssignment('c', [{ address: '10.0.0.1', port: 80, tlsMode: 'istio' }, { address: '10.0.0.2', port: 80 }]);
    raw.endpoints[0].metadata = { filter_metadata: { 'envoy.transport_socket_match': { tlsMode: 'istio' } } };
    const r = compileLoadAssignment(eds(raw), 'v1');
    assert.ok(r.valid, r.valid ? '' : r.errors.join('\n'));
    const [withSidecar, without] = r.result.endpoints;
    assert.deepEqual(withSidecar.transportSocketMetadata, { endpoint: { tlsMode: 'istio' }, locality: { tlsMode: 'istio' } });
    assert.deepEqual(without.transportSocketMetadata, { endpoint: undefined, locality: { tlsMode: 'istio' } });
  });
});

describe('DownstreamTlsContext', () => {
  const chain = (transportSocket: Json) => ({
    filter_chain_match: { transport_protocol: 'tls' },
    transport_socket: transportSocket,
    filters: [httpConnectionManager('inbound', 'inbound|9080||')],
  });

  it('compiles Istio\'s inbound mTLS chain: SDS default/ROOTCA, client certificate required, ALPN h2 and http/1.1', () => {
    const r = compileListener(lds(listener('virtualInbound', 15006, [chain(istioDownstreamTls())])), 'v1');
    assert.ok(r.valid, r.valid ? '' : r.errors.join('\n'));
    const t = r.result.filterChains[0].tls!;
    assert.equal(t.requireClientCertificate, true);
    assert.equal(t.certificateSecret?.name, 'default');
    assert.equal(t.validationSecret?.name, 'ROOTCA');
    assert.deepEqual(t.alpn, ['h2', 'http/1.1']);
    assert.equal(t.minVersion, 'TLSv1.3');
    assert.equal(r.result.filterChains[0].match.transportProtocol, 'tls');
  });

  it('compiles a gateway\'s file certificates', () => {
    const tlsSocket = {
      name: 'tls',
      typed_config: {
        '@type': TYPES.downstreamTls,
        common_tls_context: { tls_certificates: [{ certificate_chain: { inline_string: 'CERT' }, private_key: { inline_string: 'KEY' } }], alpn_protocols: ['h2', 'http/1.1'] },
      },
    };
    const r = compileListener(lds(listener('0.0.0.0_443', 443, [chain(tlsSocket)])), 'v1');
    assert.ok(r.valid, r.valid ? '' : r.errors.join('\n'));
    assert.equal(r.result.filterChains[0].tls?.cert?.toString(), 'CERT');
    assert.equal(r.result.filterChains[0].tls?.requireClientCertificate, false);
  });

  it('refuses a server without a certificate, and a required client certificate with nothing to check it against', () => {
    const noCert = { name: 'tls', typed_config: { '@type': TYPES.downstreamTls, common_tls_context: { alpn_protocols: ['h2'] } } };
    const r1 = compileListener(lds(listener('l', 443, [chain(noCert)])), 'v1');
    assert.match(r1.valid ? '' : r1.errors.join('\n'), /Listener "l": filter_chains\[0\]\.transport_socket\.typed_config\.common_tls_context: a TLS server needs a certificate/);
    const noCa = {
      name: 'tls',
      typed_config: { '@type': TYPES.downstreamTls, require_client_certificate: true, common_tls_context: { tls_certificate_sds_secret_configs: [sdsSecret('default')] } },
    };
    const r2 = compileListener(lds(listener('l', 443, [chain(noCa)])), 'v1');
    assert.match(r2.valid ? '' : r2.errors.join('\n'), /require_client_certificate: requiring a client certificate needs a validation context/);
  });

  it('refuses a credentialName secret over ADS (the gateway must use files)', () => {
    const ads = {
      name: 'tls',
      typed_config: { '@type': TYPES.downstreamTls, common_tls_context: { tls_certificate_sds_secret_configs: [{ name: 'kubernetes://gw-cert', sds_config: { ads: {} } }] } },
    };
    const r = compileListener(lds(listener('l', 443, [chain(ads)])), 'v1');
    assert.match(r.valid ? '' : r.errors.join('\n'), /SDS secret "kubernetes:\/\/gw-cert" is to be delivered over ADS/);
  });
});

describe('resolving SDS names per handshake', () => {
  it('builds one context per secret version, and says which secret is missing', async () => {
    const ca = await createTestCa();
    const store = new SecretStore();
    const contexts = new SecureContextCache(store);
    const t = cluster(edsCluster('c', { transport_socket: istioUpstreamTls(SNI, [SERVER_ID]) })).tls!;
    assert.throws(() => contexts.client(t), (err: Error) => err instanceof SecretNotReadyError && /"ROOTCA"|"default"/.test(err.message));
    const first = await ca.issueWorkload('client');
    store.setTrustedCa('ROOTCA', ca.rootPem);
    store.setCertificate('default', first.certPem, first.keyPem);
    const a = contexts.client(t);
    assert.equal(contexts.client(t), a, 'same versions: the same context');
    const second = await ca.issueWorkload('client');
    store.setCertificate('default', second.certPem, second.keyPem);
    const b = contexts.client(t);
    assert.notEqual(b, a);
    assert.notEqual(b.key, a.key);
    assert.equal(b.options.servername, SNI);
    assert.equal(b.options.rejectUnauthorized, true);
  });

  it('keeps ROOTCA\'s version when the same roots are set again', async () => {
    const ca = await createTestCa();
    const store = new SecretStore();
    const v1 = store.setTrustedCa('ROOTCA', ca.rootPem).version;
    assert.equal(store.setTrustedCa('ROOTCA', ca.rootPem).version, v1);
  });
});
