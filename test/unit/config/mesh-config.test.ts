// The mesh config file (`weft control --mesh-config`): Istio's MeshConfig YAML validated with field
// paths and lines, mapped onto the snapshot's MeshConfig, and watched — a valid edit replaces the
// config, an invalid one is reported while the last good one stays.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { MeshConfigFile, parseMeshConfig, loadMeshConfigFile, type MeshConfigLoad } from '../../../src/config/mesh-config';
import { formatProblem } from '../../../src/config/problems';
import { createLogger } from '../../../src/log/logger';
import type { MeshConfig } from '../../../src/model/snapshot';
import { waitFor } from '../../support/wait-for';
import { dedent, readRepoFile } from './config-test-support';

function valid(text: string): MeshConfig & Record<string, unknown> {
  const result = parseMeshConfig(dedent(text), 'mesh.yaml');
  assert.ok(result.valid, !result.valid ? result.errors.map(formatProblem).join('\n') : '');
  return result.meshConfig as MeshConfig & Record<string, unknown>;
}

function invalid(text: string): Extract<MeshConfigLoad, { valid: false }> {
  const result = parseMeshConfig(dedent(text), 'mesh.yaml');
  assert.equal(result.valid, false, 'expected the mesh config to be refused');
  return result as Extract<MeshConfigLoad, { valid: false }>;
}

describe('mesh config file', () => {
  it('reads the demo mesh config: 100% tracing to an OTLP/HTTP provider, JSON access logs', () => {
    const result = parseMeshConfig(readRepoFile('examples/bookinfo/mesh.yaml'), 'examples/bookinfo/mesh.yaml');
    assert.ok(result.valid, !result.valid ? result.errors.map(formatProblem).join('\n') : '');
    assert.deepEqual(result.warnings, []);
    const mesh = result.meshConfig as MeshConfig & Record<string, unknown>;
    assert.equal(mesh.enableTracing, true);
    assert.equal(mesh.defaultConfig?.tracing?.sampling, 100);
    assert.deepEqual(mesh.extensionProviders, [
      { name: 'otel', opentelemetry: { service: '127.0.0.1', port: 4318, http: { path: '/v1/traces', timeout: '5s' } } },
    ]);
    assert.deepEqual(mesh.defaultProviders, { tracing: ['otel'] });
    assert.equal(mesh.accessLogFile, '/dev/stdout');
    assert.equal(mesh.accessLogEncoding, 'JSON');
    // Fields the file leaves out keep Weft's defaults.
    assert.equal(mesh.trustDomain, 'cluster.local');
    assert.equal(mesh.rootNamespace, 'istio-system');
    assert.equal(mesh.pathNormalization?.normalization, 'DECODE_AND_MERGE_SLASHES');
    assert.ok(Object.isFrozen(mesh) && Object.isFrozen(mesh.extensionProviders));
  });

  it('maps the fields Weft acts on', () => {
    const mesh = valid(`
      trustDomain: example.org
      rootNamespace: mesh-root
      enableAutoMtls: false
      outboundTrafficPolicy: {mode: REGISTRY_ONLY}
      pathNormalization: {normalization: MERGE_SLASHES}
      accessLogFile: /tmp/access.log
      accessLogEncoding: TEXT
      accessLogFormat: "%REQ(:METHOD)% %RESPONSE_CODE%\\n"
      enableTracing: false
      defaultConfig:
        meshId: mesh-1
        tracing:
          sampling: 12.5
          maxPathTagLength: 64
          customTags:
            env: {environment: {name: STAGE, defaultValue: dev}}
      extensionProviders:
      - name: log-file
        envoyFileAccessLog: {path: /tmp/telemetry.log, logFormat: {labels: {code: '%RESPONSE_CODE%'}}}
      - name: otel
        opentelemetry: {service: otel-collector.observability.svc.cluster.local, port: 4318, http: {path: v1/traces}}
      defaultProviders: {accessLogging: [log-file], tracing: [otel], metrics: [prometheus]}
    `);
    assert.equal(mesh.trustDomain, 'example.org');
    assert.equal(mesh.rootNamespace, 'mesh-root');
    assert.equal(mesh.enableAutoMtls, false);
    assert.equal(mesh.outboundTrafficPolicy, 'REGISTRY_ONLY');
    assert.deepEqual(mesh.pathNormalization, { normalization: 'MERGE_SLASHES' });
    assert.equal(mesh.accessLogFile, '/tmp/access.log');
    assert.equal(mesh.accessLogEncoding, 'TEXT');
    assert.equal(mesh.accessLogFormat, '%REQ(:METHOD)% %RESPONSE_CODE%\n');
    assert.equal(mesh.enableTracing, false);
    assert.deepEqual(mesh.defaultConfig, {
      meshId: 'mesh-1',
      tracing: { sampling: 12.5, maxPathTagLength: 64, customTags: { env: { environment: { name: 'STAGE', defaultValue: 'dev' } } } },
    });
    assert.deepEqual(mesh.defaultProviders, { accessLogging: ['log-file'], tracing: ['otel'], metrics: ['prometheus'] });
    assert.equal(mesh.extensionProviders?.[0].envoyFileAccessLog?.logFormat?.labels?.code, '%RESPONSE_CODE%');
  });

  it('refuses an unknown field with its path, line and a suggestion', () => {
    const result = invalid(`
      trustDomain: cluster.local
      defaultConfig:
        tracing:
          samplng: 50
    `);
    assert.equal(result.errors.length, 1);
    const [error] = result.errors;
    assert.equal(error.path, 'defaultConfig.tracing.samplng');
    assert.equal(error.line, 4);
    assert.equal(error.kind, 'MeshConfig');
    assert.equal(error.file, 'mesh.yaml');
    assert.match(error.message, /unknown field "samplng"; did you mean "sampling"\?/);
    assert.match(formatProblem(error), /^Error \[WEFT-V0006\] MeshConfig mesh\.yaml \(mesh\.yaml, line 4\) defaultConfig\.tracing\.samplng: unknown field/);
  });

  it('collects every problem: ranges, enums, providers and the names defaultProviders use', () => {
    const result = invalid(`
      outboundTrafficPolicy: {mode: DENY_ALL}
      defaultConfig: {tracing: {sampling: 150}}
      extensionProviders:
      - name: otel
        opentelemetry: {service: collector, port: 4317}
      - name: nothing
      - name: otel
        envoyFileAccessLog: {path: /dev/stdout}
      - name: two
        prometheus: {}
        envoyFileAccessLog: {path: /dev/stdout}
      defaultProviders: {tracing: [zipkin]}
    `);
    const byPath = Object.fromEntries(result.errors.map((e) => [e.path, e.message]));
    assert.deepEqual(Object.keys(byPath).sort(), [
      'defaultConfig.tracing.sampling',
      'defaultProviders.tracing[0]',
      'extensionProviders[0].opentelemetry',
      'extensionProviders[1]',
      'extensionProviders[2].name',
      'extensionProviders[3].prometheus',
      'outboundTrafficPolicy.mode',
    ]);
    assert.match(byPath['defaultConfig.tracing.sampling'], /150 must be in the range 0\.\.100/);
    assert.match(byPath['defaultProviders.tracing[0]'], /no extension provider named "zipkin" \(defined: otel, nothing, otel, two, envoy, prometheus\)/);
    assert.match(byPath['extensionProviders[0].opentelemetry'], /OTLP\/HTTP only; add http: \{path: \/v1\/traces\}/);
    assert.match(byPath['extensionProviders[1]'], /an extension provider needs one of opentelemetry, envoyFileAccessLog, prometheus, zipkin/);
    assert.equal(byPath['extensionProviders[2].name'], 'extension provider "otel" is defined twice');
    assert.match(byPath['extensionProviders[3].prometheus'], /only one of .* may be set \(found envoyFileAccessLog and prometheus\)/);
    assert.match(byPath['outboundTrafficPolicy.mode'], /"DENY_ALL" is not one of ALLOW_ANY, REGISTRY_ONLY/);
  });

  it("accepts Istio fields Weft does not act on, and providers it cannot serve, with warnings", () => {
    const result = parseMeshConfig(
      dedent(`
        enablePrometheusMerge: true
        defaultConfig:
          discoveryAddress: istiod.istio-system.svc:15012
          tracing: {zipkin: {address: zipkin.istio-system:9411}}
        extensionProviders:
        - name: zipkin
          zipkin: {service: zipkin.istio-system.svc.cluster.local, port: 9411}
      `),
      'mesh.yaml',
    );
    assert.ok(result.valid);
    assert.deepEqual(
      result.warnings.map((w) => w.path),
      ['enablePrometheusMerge', 'defaultConfig.discoveryAddress', 'defaultConfig.tracing.zipkin', 'extensionProviders[0].zipkin'],
    );
    assert.deepEqual(result.meshConfig.extensionProviders, [{ name: 'zipkin', unsupported: 'zipkin' }]);
  });

  it('reads the istio ConfigMap itself (the mesh config under data.mesh)', () => {
    const mesh = valid(`
      apiVersion: v1
      kind: ConfigMap
      metadata: {name: istio, namespace: istio-system}
      data:
        mesh: |-
          trustDomain: corp.example
          defaultConfig:
            tracing:
              sampling: 5
    `);
    assert.equal(mesh.trustDomain, 'corp.example');
    assert.equal(mesh.defaultConfig?.tracing?.sampling, 5);
    const bad = invalid(`
      kind: ConfigMap
      data:
        mesh: "trustDomian: x"
    `);
    assert.deepEqual(bad.errors.map((e) => e.path), ['trustDomian']);
  });

  it('treats an empty file as the defaults, and a missing one as an error', () => {
    assert.equal(valid('').trustDomain, 'cluster.local');
    const missing = loadMeshConfigFile('/nonexistent/mesh.yaml');
    assert.equal(missing.valid, false);
    assert.match(!missing.valid ? missing.errors[0].message : '', /cannot read the mesh config file: ENOENT/);
    assert.match(!invalid('- a list').valid ? invalid('- a list').errors[0].message : '', /a mesh config must be a YAML mapping/);
  });

  describe('watched', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-mesh-config-'));
    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    it('applies a valid edit, and keeps the last good config through an invalid one', async () => {
      const file = path.join(dir, 'mesh.yaml');
      fs.writeFileSync(file, 'defaultConfig: {tracing: {sampling: 10}}\n');
      const logs: Record<string, unknown>[] = [];
      const changes: MeshConfig[] = [];
      const watched = new MeshConfigFile({
        file,
        settleMs: 10,
        logger: createLogger({ level: 'debug', write: (line) => logs.push(JSON.parse(line)) }),
        onChange: (m) => changes.push(m),
      });
      try {
        const loaded = watched.load();
        assert.ok(loaded.valid);
        assert.equal(watched.current().defaultConfig?.tracing?.sampling, 10);
        watched.watch();

        // Editors often write a new file and rename it over the old one.
        fs.writeFileSync(`${file}.tmp`, 'defaultConfig: {tracing: {sampling: 100}}\n');
        fs.renameSync(`${file}.tmp`, file);
        await waitFor(() => changes.length === 1, { message: 'the edit was applied' });
        assert.equal(changes[0].defaultConfig?.tracing?.sampling, 100);
        assert.equal(watched.current(), changes[0]);

        fs.writeFileSync(file, 'defaultConfig: {tracing: {sampling: 100}}\noutboundTrafficPolicy: {mode: CLOSED}\n');
        const rejected = await waitFor(() => logs.find((l) => l.event === 'mesh_config_rejected'), { message: 'the bad edit was reported' });
        assert.match(String(rejected.problem), /outboundTrafficPolicy\.mode: "CLOSED" is not one of ALLOW_ANY, REGISTRY_ONLY/);
        assert.equal(rejected.lastGoodServing, true);
        assert.deepEqual(watched.rejected.map((p) => p.path), ['outboundTrafficPolicy.mode']);
        assert.equal(changes.length, 1, 'an invalid edit changes nothing');
        assert.equal(watched.current().defaultConfig?.tracing?.sampling, 100);

        fs.writeFileSync(file, 'defaultConfig: {tracing: {sampling: 1}}\n');
        await waitFor(() => changes.length === 2, { message: 'the fixed file was applied' });
        assert.equal(watched.current().defaultConfig?.tracing?.sampling, 1);
        assert.deepEqual(watched.rejected, []);
      } finally {
        watched.close();
      }
    });
  });
});
