// The resource envelope: apiVersion per kind, metadata, unknown kinds, defaults, top-level fields.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateResource } from '../../../src/config/validate';
import { check, dedent, paths } from './config-test-support';

const destinationRule = (apiVersion: string, metadata = 'name: reviews') =>
  dedent(`
  apiVersion: ${apiVersion}
  kind: DestinationRule
  metadata: {${metadata}}
  spec: {host: reviews}
`);

describe('resource envelope', () => {
  it('accepts every served apiVersion and defaults the namespace to "default"', () => {
    for (const version of ['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3']) {
      const result = check(destinationRule(version));
      assert.equal(result.valid, true, version);
      assert.deepEqual(result.resource?.metadata, { name: 'reviews', namespace: 'default' });
      assert.equal(result.resource?.apiVersion, version);
    }
  });

  it('keeps the origin, labels and annotations, and drops null fields from the spec', () => {
    const result = check(
      dedent(`
      apiVersion: networking.istio.io/v1
      kind: DestinationRule
      metadata:
        name: reviews
        namespace: prod
        labels: {app: reviews}
        annotations: {note: kept}
        uid: "1234"
      spec:
        host: reviews
        trafficPolicy:
        subsets: [{name: v1, labels: {version: v1}}]
    `),
    );
    assert.equal(result.valid, true);
    assert.deepEqual(result.resource?.metadata, {
      name: 'reviews',
      namespace: 'prod',
      labels: { app: 'reviews' },
      annotations: { note: 'kept' },
    });
    assert.deepEqual(result.resource?.spec, { host: 'reviews', subsets: [{ name: 'v1', labels: { version: 'v1' } }] });
    assert.deepEqual(result.resource?.origin, { file: 'test.yaml', source: 'test', document: 0 });
  });

  it('rejects an apiVersion the kind is not served under', () => {
    const result = check(destinationRule('security.istio.io/v1'));
    assert.equal(result.valid, false);
    assert.deepEqual(paths(result.errors), ['apiVersion']);
    assert.equal(result.errors[0].code, 'WEFT-V0004');
    assert.match(result.errors[0].message, /networking\.istio\.io\/v1, networking\.istio\.io\/v1beta1, networking\.istio\.io\/v1alpha3/);
    assert.equal(check(destinationRule('networking.istio.io/v2')).valid, false);
  });

  it('requires metadata.name as a DNS-1123 name, and a valid namespace', () => {
    const missing = check(destinationRule('networking.istio.io/v1', 'namespace: default'));
    assert.deepEqual(paths(missing.errors), ['metadata.name']);
    assert.equal(missing.errors[0].code, 'WEFT-V0005');
    const bad = check(destinationRule('networking.istio.io/v1', 'name: Reviews_1, namespace: Prod'));
    assert.deepEqual(paths(bad.errors), ['metadata.name', 'metadata.namespace']);
    const noMetadata = check('apiVersion: networking.istio.io/v1\nkind: DestinationRule\nspec: {host: reviews}\n');
    assert.deepEqual(paths(noMetadata.errors), ['metadata']);
  });

  it('applies per-kind name rules: Gateway names have no dots, Service names start with a letter', () => {
    const gateway = check(
      'apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: my.gateway}\nspec: {servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]}\n',
    );
    assert.deepEqual(paths(gateway.errors), ['metadata.name']);
    const service = check('apiVersion: v1\nkind: Service\nmetadata: {name: 9lives}\nspec: {ports: [{port: 80}]}\n');
    assert.deepEqual(paths(service.errors), ['metadata.name']);
  });

  it('skips an unknown kind with a warning, so callers can tell skipped from invalid', () => {
    const result = check('apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: prod}\ndata: {a: b}\n');
    assert.equal(result.valid, false);
    assert.deepEqual(result.errors, []);
    assert.equal(result.warnings.length, 1);
    const [warning] = result.warnings;
    assert.equal(warning.code, 'WEFT-V0003');
    assert.equal(warning.severity, 'warning');
    assert.deepEqual([warning.kind, warning.namespace, warning.name], ['ConfigMap', 'prod', 'settings']);
  });

  it('suggests the right spelling when a kind differs only in case', () => {
    const result = check('apiVersion: networking.istio.io/v1\nkind: virtualservice\nmetadata: {name: x}\nspec: {}\n');
    assert.deepEqual(result.errors, []);
    assert.match(result.warnings[0].message, /did you mean "VirtualService"/);
  });

  it('reports documents without kind or apiVersion, and documents that are not mappings', () => {
    const noKind = check('apiVersion: v1\nmetadata: {name: x}\n');
    assert.deepEqual(paths(noKind.errors), ['kind']);
    const noApiVersion = check('kind: Service\nmetadata: {name: x}\nspec: {ports: [{port: 80}]}\n');
    assert.deepEqual(paths(noApiVersion.errors), ['apiVersion']);
    const list = validateResource({ raw: ['a', 'b'], origin: { source: 'test' } });
    assert.equal(list.valid, false);
    assert.equal(list.valid ? '' : list.errors[0].code, 'WEFT-V0002');
  });

  it('rejects unknown top-level fields and requires spec for Istio kinds', () => {
    const result = check('apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: x}\nsepc: {host: reviews}\n');
    assert.deepEqual(paths(result.errors), ['sepc', 'spec']);
    assert.deepEqual(
      result.errors.map((e) => e.code),
      ['WEFT-V0006', 'WEFT-V0008'],
    );
  });

  it('accepts status, which exported YAML often carries', () => {
    const result = check(
      'apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: x}\nspec: {host: reviews}\nstatus: {observedGeneration: 3}\n',
    );
    assert.equal(result.valid, true);
  });

  it('names the resource, file, document and line in every problem', () => {
    const result = check(
      dedent(`
      apiVersion: networking.istio.io/v1
      kind: DestinationRule
      metadata:
        name: reviews
        namespace: prod
      spec:
        host: reviews
        subsets:
        - name: v1
          lables: {version: v1}
    `),
    );
    assert.equal(result.errors.length, 1);
    const [error] = result.errors;
    assert.deepEqual(
      {
        kind: error.kind,
        namespace: error.namespace,
        name: error.name,
        file: error.file,
        document: error.document,
        line: error.line,
        path: error.path,
      },
      {
        kind: 'DestinationRule',
        namespace: 'prod',
        name: 'reviews',
        file: 'test.yaml',
        document: 0,
        line: 10,
        path: 'spec.subsets[0].lables',
      },
    );
    assert.match(error.message, /unknown field "lables"; did you mean "labels"\?/);
  });
});
