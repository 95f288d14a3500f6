// Cross-resource analysis: unresolved references, conflicting mesh VirtualServices, subsets selecting nothing.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { analyzeResources, resolveShortHost } from '../../../src/config/analyze';
import type { ConfigProblem } from '../../../src/config/problems';
import { dedent, validResources } from './config-test-support';

const services = dedent(`
  apiVersion: v1
  kind: Service
  metadata: {name: reviews}
  spec: {ports: [{port: 9080, name: http}], selector: {app: reviews}}
  ---
  apiVersion: v1
  kind: Service
  metadata: {name: ratings, namespace: prod}
  spec: {ports: [{port: 9080, name: http}], selector: {app: ratings}}
`);

const reviewsRule = dedent(`
  apiVersion: networking.istio.io/v1
  kind: DestinationRule
  metadata: {name: reviews}
  spec:
    host: reviews
    subsets:
    - {name: v1, labels: {version: v1}}
    - {name: v2, labels: {version: v2}}
`);

function analyze(...texts: string[]): ConfigProblem[] {
  return analyzeResources(validResources(texts.join('\n---\n'), 'mesh.yaml'));
}

const summary = (problems: ConfigProblem[]) => problems.map((p) => `${p.severity} ${p.code} ${p.kind} ${p.namespace}/${p.name} ${p.path}`);

describe('resolveShortHost', () => {
  it("follows Istio's ResolveShortnameToFQDN", () => {
    assert.equal(resolveShortHost('reviews', 'default'), 'reviews.default.svc.cluster.local');
    assert.equal(resolveShortHost('reviews', 'prod', 'mesh.internal'), 'reviews.prod.svc.mesh.internal');
    // Any dot makes a name fully qualified in Istio, even 'reviews.prod'.
    assert.equal(resolveShortHost('reviews.prod', 'default'), 'reviews.prod');
    assert.equal(resolveShortHost('reviews.prod.svc.cluster.local', 'default'), 'reviews.prod.svc.cluster.local');
    assert.equal(resolveShortHost('*', 'default'), '*');
    assert.equal(resolveShortHost('*.example.com', 'default'), '*.example.com');
    assert.equal(resolveShortHost('10.0.0.1', 'default'), '10.0.0.1');
    assert.equal(resolveShortHost('2001:db8::1', 'default'), '2001:db8::1');
    assert.equal(resolveShortHost('reviews', ''), 'reviews.svc.cluster.local');
  });
});

describe('analyzeResources', () => {
  it('finds nothing wrong with a consistent mesh', () => {
    const vs = dedent(`
      apiVersion: networking.istio.io/v1
      kind: VirtualService
      metadata: {name: reviews}
      spec:
        hosts: [reviews]
        http:
        - route:
          - {destination: {host: reviews, subset: v1}, weight: 90}
          - {destination: {host: reviews.default.svc.cluster.local, subset: v2}, weight: 10}
    `);
    assert.deepEqual(analyze(services, reviewsRule, vs), []);
  });

  it('reports a route to a subset no DestinationRule defines (IST0101), in http, mirror, tcp and tls routes', () => {
    const vs = dedent(`
      apiVersion: networking.istio.io/v1
      kind: VirtualService
      metadata: {name: reviews}
      spec:
        hosts: [reviews]
        http:
        - route: [{destination: {host: reviews, subset: v4}}]
          mirror: {host: reviews, subset: v5}
        tcp:
        - route: [{destination: {host: reviews, subset: v1}}, {destination: {host: reviews, subset: v6}, weight: 1}]
    `);
    const problems = analyze(services, reviewsRule, vs);
    assert.deepEqual(summary(problems), [
      'error IST0101 VirtualService default/reviews spec.http[0].route[0].destination.subset',
      'error IST0101 VirtualService default/reviews spec.http[0].mirror.subset',
      'error IST0101 VirtualService default/reviews spec.tcp[0].route[1].destination.subset',
    ]);
    assert.match(problems[0].message, /^Referenced host\+subset in destinationrule not found: "reviews\+v4"/);
    assert.equal(problems[0].file, 'mesh.yaml');
    assert.equal(problems[0].document, 3);
  });

  it('resolves short hosts in the namespace of each resource when matching DestinationRules', () => {
    const ruleInProd = reviewsRule.replace('metadata: {name: reviews}', 'metadata: {name: reviews, namespace: prod}');
    const vs = dedent(`
      apiVersion: networking.istio.io/v1
      kind: VirtualService
      metadata: {name: reviews}
      spec:
        hosts: [reviews]
        http: [{route: [{destination: {host: reviews, subset: v1}}]}]
    `);
    // The rule's 'reviews' means reviews.prod..., the route's means reviews.default...
    assert.deepEqual(summary(analyze(services, ruleInProd, vs)), [
      'error IST0101 VirtualService default/reviews spec.http[0].route[0].destination.subset',
    ]);
  });

  it('reports a VirtualService bound to a Gateway that does not exist (IST0101)', () => {
    const gateway = dedent(`
      apiVersion: networking.istio.io/v1
      kind: Gateway
      metadata: {name: ingress, namespace: istio-system}
      spec: {servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]}
    `);
    const vs = dedent(`
      apiVersion: networking.istio.io/v1
      kind: VirtualService
      metadata: {name: edge}
      spec:
        hosts: [reviews.example.com]
        gateways: [mesh, istio-system/ingress, ingress, ingress.istio-system.svc.cluster.local]
        http:
        - match: [{gateways: [missing]}]
          route: [{destination: {host: reviews}}]
    `);
    const problems = analyze(services, gateway, vs);
    assert.deepEqual(summary(problems), [
      'error IST0101 VirtualService default/edge spec.gateways[2]',
      'error IST0101 VirtualService default/edge spec.http[0].match[0].gateways[0]',
    ]);
    assert.match(problems[0].message, /^Referenced gateway not found: "ingress" \(looked for Gateway default\/ingress\)/);
  });

  it('warns about destination hosts the registry does not know (IST0101)', () => {
    const entry = dedent(`
      apiVersion: networking.istio.io/v1
      kind: ServiceEntry
      metadata: {name: external}
      spec: {hosts: ["*.example.com"], ports: [{number: 443, name: tls, protocol: TLS}], resolution: NONE}
    `);
    const vs = dedent(`
      apiVersion: networking.istio.io/v1
      kind: VirtualService
      metadata: {name: mixed}
      spec:
        hosts: [mixed.example.com]
        http:
        - route:
          - {destination: {host: reviews}, weight: 1}
          - {destination: {host: api.example.com}, weight: 1}
          - {destination: {host: ghost}, weight: 1}
          - {destination: {host: reviews.prod}, weight: 1}
    `);
    const problems = analyze(services, entry, vs);
    assert.deepEqual(summary(problems), [
      'warning IST0101 VirtualService default/mixed spec.http[0].route[2].destination.host',
      'warning IST0101 VirtualService default/mixed spec.http[0].route[3].destination.host',
    ]);
    assert.match(problems[0].message, /"ghost" \(resolved to ghost\.default\.svc\.cluster\.local\)/);
  });

  it('reports two mesh VirtualServices for the same host (IST0109), unless exportTo keeps them apart', () => {
    const vs = (name: string, namespace: string, host: string, extra: string[] = []) =>
      [
        'apiVersion: networking.istio.io/v1',
        'kind: VirtualService',
        `metadata: {name: ${name}, namespace: ${namespace}}`,
        'spec:',
        `  hosts: [${host}]`,
        ...extra.map((line) => `  ${line}`),
        '  http: [{route: [{destination: {host: reviews.default.svc.cluster.local}}]}]',
      ].join('\n');
    const problems = analyze(services, vs('a', 'default', 'reviews'), vs('b', 'default', 'reviews.default.svc.cluster.local'));
    assert.deepEqual(summary(problems), [
      'warning IST0109 VirtualService default/a spec.hosts[0]',
      'warning IST0109 VirtualService default/b spec.hosts[0]',
    ]);
    assert.match(
      problems[0].message,
      /default\/a,default\/b associated with mesh gateway define the same host reviews\.default\.svc\.cluster\.local/,
    );

    const privateCopies = analyze(
      services,
      vs('a', 'team-1', 'reviews.default.svc.cluster.local', ['exportTo: ["."]']),
      vs('b', 'team-2', 'reviews.default.svc.cluster.local', ['exportTo: ["."]']),
    );
    assert.deepEqual(privateCopies, []);
    // Istio merges VirtualServices bound to the same ingress gateway: not a conflict.
    const gateway =
      'apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw}\nspec: {servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]}';
    assert.deepEqual(
      analyze(
        services,
        gateway,
        vs('a', 'default', 'www.example.com', ['gateways: [gw]']),
        vs('b', 'default', 'www.example.com', ['gateways: [gw]']),
      ),
      [],
    );
  });

  it('warns about a subset that selects none of the known workloads (IST0173)', () => {
    const workloads = dedent(`
      apiVersion: networking.istio.io/v1
      kind: WorkloadEntry
      metadata: {name: reviews-v1}
      spec: {address: 127.0.10.1, labels: {app: reviews, version: v1}}
      ---
      apiVersion: networking.istio.io/v1
      kind: WorkloadEntry
      metadata: {name: other-namespace}
      spec: {address: 127.0.10.2, labels: {app: reviews, version: v2}}
    `).replace('metadata: {name: other-namespace}', 'metadata: {name: other-namespace, namespace: prod}');
    const problems = analyze(services, reviewsRule, workloads);
    assert.deepEqual(summary(problems), ['warning IST0173 DestinationRule default/reviews spec.subsets[1]']);
    assert.match(problems[0].message, /subset v2 does not select any workload of reviews\.default\.svc\.cluster\.local/);
    // Without any known workload there is nothing to compare with.
    assert.deepEqual(analyze(services, reviewsRule), []);
  });

  it("uses a ServiceEntry's endpoints as its workloads", () => {
    const entry = dedent(`
      apiVersion: networking.istio.io/v1
      kind: ServiceEntry
      metadata: {name: db}
      spec:
        hosts: [db.example.com]
        ports: [{number: 5432, name: tcp, protocol: TCP}]
        resolution: STATIC
        endpoints: [{address: 10.0.0.1, labels: {role: primary}}]
      ---
      apiVersion: networking.istio.io/v1
      kind: DestinationRule
      metadata: {name: db}
      spec:
        host: db.example.com
        subsets: [{name: primary, labels: {role: primary}}, {name: replica, labels: {role: replica}}]
    `);
    assert.deepEqual(summary(analyze(entry)), ['warning IST0173 DestinationRule default/db spec.subsets[1]']);
  });

  it('reports a delegate that does not exist', () => {
    const root = dedent(`
      apiVersion: networking.istio.io/v1
      kind: VirtualService
      metadata: {name: root}
      spec:
        hosts: [bookinfo.example.com]
        gateways: [mesh]
        http:
        - match: [{uri: {prefix: /reviews}}]
          delegate: {name: reviews-routes, namespace: prod}
        - delegate: {name: existing}
      ---
      apiVersion: networking.istio.io/v1
      kind: VirtualService
      metadata: {name: existing}
      spec:
        http: [{route: [{destination: {host: reviews}}]}]
    `);
    assert.deepEqual(summary(analyze(services, root)), ['error IST0101 VirtualService default/root spec.http[0].delegate']);
  });
});
