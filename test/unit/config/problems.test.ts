// Problem formatting (istioctl style), field paths and kind lookup for the CLI.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KNOWN_KINDS, lookupKind } from '../../../src/config/kinds';
import { childPath, formatProblem, pathSegments, type ConfigProblem } from '../../../src/config/problems';

describe('formatProblem', () => {
  const problem: ConfigProblem = {
    code: 'IST0101',
    severity: 'error',
    kind: 'VirtualService',
    namespace: 'default',
    name: 'reviews',
    file: 'reviews.yaml',
    document: 0,
    path: 'spec.http[0].route[0].destination.subset',
    message: 'Referenced host+subset in destinationrule not found: "reviews+v4"',
  };

  it('prints one line: severity, code, resource, origin, path and message', () => {
    assert.equal(
      formatProblem(problem),
      'Error [IST0101] VirtualService default/reviews (reviews.yaml#0) spec.http[0].route[0].destination.subset: Referenced host+subset in destinationrule not found: "reviews+v4"',
    );
  });

  it('adds the line when known, and leaves out what the problem does not have', () => {
    assert.equal(
      formatProblem({ ...problem, severity: 'warning', line: 12 }).startsWith(
        'Warning [IST0101] VirtualService default/reviews (reviews.yaml#0, line 12) spec.',
      ),
      true,
    );
    const syntax: ConfigProblem = {
      code: 'WEFT-V0001',
      severity: 'error',
      kind: '',
      namespace: '',
      name: '',
      file: 'x.yaml',
      document: 2,
      line: 4,
      path: '',
      message: 'YAML syntax error',
    };
    assert.equal(formatProblem(syntax), 'Error [WEFT-V0001] (x.yaml#2, line 4) YAML syntax error');
  });
});

describe('field paths', () => {
  it('quotes map keys that are not identifiers and splits paths back into segments', () => {
    const path = childPath(childPath('spec.http[0].match[0]', 'headers'), 'end-user');
    assert.equal(path, 'spec.http[0].match[0].headers["end-user"]');
    assert.deepEqual(pathSegments(`${path}.exact`), ['spec', 'http', 0, 'match', 0, 'headers', 'end-user', 'exact']);
    assert.deepEqual(pathSegments('spec.portLevelMtls["8080"].mode'), ['spec', 'portLevelMtls', '8080', 'mode']);
  });
});

describe('lookupKind', () => {
  it('finds kinds by name, plural or short name, case-insensitively', () => {
    assert.equal(lookupKind('vs')?.kind, 'VirtualService');
    assert.equal(lookupKind('virtualservices')?.kind, 'VirtualService');
    assert.equal(lookupKind('VirtualService')?.kind, 'VirtualService');
    assert.equal(lookupKind('DR')?.kind, 'DestinationRule');
    assert.equal(lookupKind('gw')?.kind, 'Gateway');
    assert.equal(lookupKind('se')?.kind, 'ServiceEntry');
    assert.equal(lookupKind('we')?.kind, 'WorkloadEntry');
    assert.equal(lookupKind('sidecars')?.kind, 'Sidecar');
    assert.equal(lookupKind('svc')?.kind, 'Service');
    assert.equal(lookupKind('pa')?.kind, 'PeerAuthentication');
    assert.equal(lookupKind('authorizationpolicies')?.kind, 'AuthorizationPolicy');
    assert.equal(lookupKind('ra')?.kind, 'RequestAuthentication');
    assert.equal(lookupKind('configmap'), undefined);
  });

  it('lists the served groups and versions of every kind', () => {
    const versions = Object.fromEntries(KNOWN_KINDS.map((k) => [k.kind, `${k.group}:${k.versions.join(',')}`]));
    assert.equal(versions.VirtualService, 'networking.istio.io:v1,v1beta1,v1alpha3');
    assert.equal(versions.Sidecar, 'networking.istio.io:v1,v1beta1,v1alpha3');
    assert.equal(versions.Service, ':v1');
    assert.equal(versions.AuthorizationPolicy, 'security.istio.io:v1,v1beta1');
    assert.equal(versions.Telemetry, 'telemetry.istio.io:v1,v1alpha1');
    assert.equal(KNOWN_KINDS.length, 11);
  });
});
