// Test-support checks on generated resources: every resource encodes as its real Envoy proto
// without losing a field, and (for proxyless) @grpc/grpc-js-xds's own validators accept it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { decodeResource, encodeResource } from '../../../src/xds/protos';
import type { GeneratedResources } from '../../../src/xds/translate';

/** Plain-JSON form of generated resources: `{typeUrl: {name: resource}}`. */
export function toPlain(generated: GeneratedResources): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const typeUrl of Object.keys(generated)) {
    out[typeUrl] = Object.fromEntries([...generated[typeUrl]].map(([name, r]) => [name, JSON.parse(JSON.stringify(r))]));
  }
  return out;
}

function decodeWithDefaults(typeUrl: string, bytes: Uint8Array): unknown {
  return decodeResource(typeUrl, bytes, { defaults: true });
}

/** Every key of `expected` is in `actual` with an equal value (recursively); arrays match in full. */
function assertSubset(expected: unknown, actual: unknown, at: string): void {
  if (Array.isArray(expected)) {
    assert.ok(Array.isArray(actual), `${at}: expected a list, got ${JSON.stringify(actual)}`);
    assert.equal((actual as unknown[]).length, expected.length, `${at}: list length`);
    expected.forEach((v, i) => assertSubset(v, (actual as unknown[])[i], `${at}[${i}]`));
    return;
  }
  if (expected !== null && typeof expected === 'object') {
    assert.ok(actual !== null && typeof actual === 'object', `${at}: expected an object, got ${JSON.stringify(actual)}`);
    for (const [k, v] of Object.entries(expected)) assertSubset(v, (actual as Record<string, unknown>)[k], `${at}.${k}`);
    return;
  }
  assert.deepEqual(actual, expected, `${at}: value lost or changed in encoding`);
}

/**
 * encodeResource accepts every resource, and decoding the bytes gives back every field that was
 * set (so no misspelled enum or mistyped value is silently dropped by protobufjs).
 */
export function assertEncodable(generated: GeneratedResources): void {
  for (const typeUrl of Object.keys(generated)) {
    for (const [name, resource] of generated[typeUrl]) {
      let bytes: Uint8Array;
      try {
        bytes = encodeResource(typeUrl, resource);
      } catch (err) {
        assert.fail(`${typeUrl} "${name}" does not encode: ${(err as Error).message}`);
      }
      const json = JSON.parse(JSON.stringify(resource));
      assertSubset(json, decodeWithDefaults(typeUrl, bytes), `${typeUrl.split('.').pop()}[${name}]`);
    }
  }
}

// grpc-js-xds's validators run in a child process, as its client would: registering its filters
// and LB policies is process-wide and must not leak into the other tests.
const GRPC_VALIDATOR_SCRIPT = `
require('@grpc/grpc-js-xds').register(); // registers the HTTP filters and LB policies, as a client does
const base = '@grpc/grpc-js-xds/build/src/xds-resource-type/';
const types = {
  'type.googleapis.com/envoy.config.listener.v3.Listener': require(base + 'listener-resource-type').ListenerResourceType.get(),
  'type.googleapis.com/envoy.config.route.v3.RouteConfiguration': require(base + 'route-config-resource-type').RouteConfigurationResourceType.get(),
  'type.googleapis.com/envoy.config.cluster.v3.Cluster': require(base + 'cluster-resource-type').ClusterResourceType.get(),
  'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment': require(base + 'endpoint-resource-type').EndpointResourceType.get(),
};
const context = { server: { serverUri: 'localhost:15010', channelCredentials: {}, serverFeatures: [] }, bootstrap: { certificateProviders: {} } };
const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const problems = [];
for (const r of input) {
  const result = types[r.typeUrl].decode(context, { type_url: r.typeUrl, value: Buffer.from(r.value, 'base64') });
  if (result.error) problems.push(r.name + ': ' + result.error);
  else if (result.name !== r.name) problems.push(r.name + ': decoded as ' + result.name);
}
process.stdout.write(JSON.stringify(problems));
`;

/** grpc-js-xds's validators (the ones its XdsClient NACKs with) accept every resource. */
export function assertGrpcAccepts(generated: GeneratedResources): void {
  const input: { typeUrl: string; name: string; value: string }[] = [];
  for (const typeUrl of Object.keys(generated)) {
    for (const [name, resource] of generated[typeUrl]) {
      input.push({ typeUrl, name, value: Buffer.from(encodeResource(typeUrl, resource)).toString('base64') });
    }
  }
  const child = spawnSync(process.execPath, ['-e', GRPC_VALIDATOR_SCRIPT], {
    input: JSON.stringify(input),
    cwd: path.resolve(__dirname, '../../../..'),
    encoding: 'utf8',
  });
  assert.equal(child.status, 0, `grpc-js-xds validator process failed: ${child.stderr}`);
  assert.deepEqual(JSON.parse(child.stdout), [], 'grpc-js-xds rejects resources');
}
