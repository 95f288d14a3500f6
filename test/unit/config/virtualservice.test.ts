// VirtualService validation: Istio's documented examples pass; each invalid field is reported at its path.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { check, checkAll, fixture, paths, resourceYaml } from './config-test-support';

const vs = (spec: string, opts: { name?: string } = {}) => check(resourceYaml('VirtualService', spec, opts));

function assertErrors(spec: string, expectedPaths: string[]) {
  const result = vs(spec);
  assert.deepEqual(paths(result.errors), expectedPaths, result.errors.map((e) => `${e.path}: ${e.message}`).join('\n'));
  return result;
}

describe('VirtualService validation', () => {
  it("accepts every example of Istio's VirtualService reference without problems", () => {
    const results = checkAll(fixture('istio-docs/virtual-service.yaml'));
    assert.equal(results.length, 15);
    for (const result of results) {
      assert.deepEqual(result.errors, [], result.errors.map((e) => `${e.name} ${e.path}: ${e.message}`).join('\n'));
      assert.deepEqual(result.warnings, [], result.warnings.map((e) => `${e.name} ${e.path}: ${e.message}`).join('\n'));
    }
  });

  it('collects every error of a broken route, each at its field path', () => {
    const result = assertErrors(
      `
      hosts: [reviews]
      http:
      - match:
        - uri: {exact: /a, prefix: /b}
          headers:
            "bad header": {exact: x}
        route:
        - destination: {host: reviews, subset: v1_bad}
          weight: -1
        - destination: {host: reviews, port: {number: 70000}}
          wieght: 5
        timeout: 5
        retries: {attempts: 3, retryOn: "5xx,bogus"}
        fault: {abort: {httpStatus: 700, percentage: {value: 101}}}
      `,
      [
        'spec.http[0].match[0].uri.prefix',
        'spec.http[0].match[0].headers["bad header"]',
        'spec.http[0].route[0].destination.subset',
        'spec.http[0].route[0].weight',
        'spec.http[0].route[1].destination.port.number',
        'spec.http[0].route[1].wieght',
        'spec.http[0].timeout',
        'spec.http[0].retries.retryOn',
        'spec.http[0].fault.abort.percentage.value',
        'spec.http[0].fault.abort.httpStatus',
      ],
    );
    const unknown = result.errors.find((e) => e.path.endsWith('wieght'));
    assert.equal(unknown?.code, 'WEFT-V0006');
    assert.match(unknown?.message ?? '', /did you mean "weight"/);
    assert.equal(result.errors.find((e) => e.path === 'spec.http[0].timeout')?.code, 'WEFT-V0007');
  });

  describe('hosts and gateways', () => {
    it('rejects "*" for the mesh, invalid host names and duplicate hosts', () => {
      assertErrors(
        `
        hosts: ["*", "bad_host.com", "reviews", "reviews"]
        http: [{route: [{destination: {host: reviews}}]}]
        `,
        ['spec.hosts[0]', 'spec.hosts[1]'],
      );
      assertErrors(
        `
        hosts: ["*.example.com", "foo.example.com"]
        http: [{route: [{destination: {host: reviews}}]}]
        `,
        ['spec.hosts[1]'],
      );
    });

    it('allows "*" on a gateway and IP addresses as hosts', () => {
      assertErrors(
        `
        hosts: ["*"]
        gateways: [istio-system/ingress]
        http: [{route: [{destination: {host: reviews}}]}]
        `,
        [],
      );
      assertErrors(
        `
        hosts: ["10.0.0.1"]
        http: [{route: [{destination: {host: reviews}}]}]
      `,
        [],
      );
    });

    it('treats a VirtualService without hosts as a delegate: no gateways, tcp or tls', () => {
      assertErrors(
        `
        gateways: [my-gateway]
        http: [{route: [{destination: {host: reviews}}]}]
        tcp: [{route: [{destination: {host: mongo}}]}]
        `,
        ['spec.gateways', 'spec.tcp'],
      );
      assertErrors(
        `
        http: [{route: [{destination: {host: reviews}}]}]
      `,
        [],
      );
    });

    it('checks gateway references: name, namespace/name, mesh', () => {
      assertErrors(
        `
        hosts: [reviews.example.com]
        gateways: [mesh, my-gateway, istio-system/ingress, "ns/", "bad ns/gw"]
        http: [{route: [{destination: {host: reviews}}]}]
        `,
        ['spec.gateways[3]', 'spec.gateways[3]', 'spec.gateways[4]'],
      );
    });

    it('warns about the legacy FQDN gateway form and suggests namespace/name', () => {
      const result = assertErrors(
        `
        hosts: [reviews.example.com]
        gateways: [ingress.istio-system.svc.cluster.local]
        http: [{route: [{destination: {host: reviews}}]}]
        `,
        [],
      );
      assert.deepEqual(paths(result.warnings), ['spec.gateways[0]']);
      assert.match(result.warnings[0].message, /"istio-system\/ingress"/);
    });

    it('requires at least one of http, tcp or tls', () => {
      assertErrors('hosts: [reviews]', ['spec']);
    });
  });

  describe('HTTP routes', () => {
    it('needs exactly one action: route, redirect, directResponse (or delegate)', () => {
      assertErrors(
        `
        hosts: [reviews]
        http:
        - match: [{uri: {prefix: /a}}]
        - redirect: {uri: /b}
          route: [{destination: {host: reviews}}]
        - directResponse: {status: 503}
          route: [{destination: {host: reviews}}]
        - redirect: {uri: /b}
          directResponse: {status: 503}
        - delegate: {name: reviews-delegate}
          route: [{destination: {host: reviews}}]
        `,
        ['spec.http[0].route', 'spec.http[1].redirect', 'spec.http[2].directResponse', 'spec.http[3].directResponse', 'spec.http[4].route'],
      );
    });

    it('follows Istio on weights: not negative, and not all zero when there are several destinations', () => {
      assertErrors(
        `
        hosts: [reviews]
        http:
        - route:
          - {destination: {host: reviews, subset: v1}, weight: 0}
          - {destination: {host: reviews, subset: v2}, weight: 0}
        - route:
          - {destination: {host: reviews, subset: v1}, weight: 30}
          - {destination: {host: reviews, subset: v2}, weight: 30}
        - route:
          - {destination: {host: reviews, subset: v1}}
        - route:
          - {destination: {host: reviews}, weight: "50"}
        `,
        ['spec.http[0].route', 'spec.http[3].route[0].weight'],
      );
    });

    it('requires a destination host and checks its form, subset and port', () => {
      assertErrors(
        `
        hosts: [reviews]
        http:
        - route:
          - destination: {subset: v1}
          - destination: {host: "*"}
          - destination: {host: "reviews..default"}
          - destination: {host: reviews, port: {}}
        `,
        [
          'spec.http[0].route[0].destination.host',
          'spec.http[0].route[1].destination.host',
          'spec.http[0].route[2].destination.host',
          'spec.http[0].route[3].destination.port.number',
          // Several destinations without weights: Istio rejects a total weight of 0.
          'spec.http[0].route',
        ],
      );
    });

    it('checks string matches: one of exact/prefix/regex, RE2 regexes, non-empty prefixes except on uri', () => {
      assertErrors(
        `
        hosts: [reviews]
        http:
        - match:
          - uri: {prefix: ""}
            scheme: {prefix: ""}
            method: {regex: ""}
            authority: {regex: "(unclosed"}
            queryParams: {q: {regex: "(?!no-lookahead)"}}
          - uri: {regex: "(?i)^/API/(?P<version>v[0-9]+)/.*"}
            headers: {x-id: {regex: "\\\\d+"}}
          route: [{destination: {host: reviews}}]
        `,
        [
          'spec.http[0].match[0].scheme.prefix',
          'spec.http[0].match[0].method.regex',
          'spec.http[0].match[0].authority.regex',
          'spec.http[0].match[0].queryParams.q.regex',
        ],
      );
    });

    it('accepts header presence matches and warns about upper-case header names', () => {
      const result = assertErrors(
        `
        hosts: [reviews]
        http:
        - match:
          - headers: {x-present: {}, End-User: {exact: jason}}
            withoutHeaders: {x-debug: {regex: "*"}}
          route: [{destination: {host: reviews}}]
        `,
        [],
      );
      assert.deepEqual(paths(result.warnings), ['spec.http[0].match[0].headers["End-User"]']);
    });

    it('checks match ports, source labels and source namespaces', () => {
      assertErrors(
        `
        hosts: [reviews]
        http:
        - match:
          - port: 70000
            sourceLabels: {"app/": x, version: "not valid!"}
            sourceNamespace: Not_A_Namespace
          - port: 0
          route: [{destination: {host: reviews}}]
        `,
        [
          'spec.http[0].match[0].port',
          'spec.http[0].match[0].sourceLabels["app/"]',
          'spec.http[0].match[0].sourceLabels.version',
          'spec.http[0].match[0].sourceNamespace',
        ],
      );
    });

    it('accepts Istio durations of at least 1ms and rejects the rest', () => {
      const durations = ['3s', '1.5s', '100ms', '1m', '1h', '1h30m', '2000us'];
      const specs = durations.map((d) => `- {timeout: "${d}", route: [{destination: {host: reviews}}]}`).join('\n');
      assertErrors(`hosts: [reviews]\nhttp:\n${specs}`, []);
      const bad = ['5', '0s', '0.5ms', '1500us', '-1s', '1d', 'soon', ''];
      const badSpecs = bad.map((d) => `- {timeout: "${d}", route: [{destination: {host: reviews}}]}`).join('\n');
      assertErrors(
        `hosts: [reviews]\nhttp:\n${badSpecs}`,
        bad.map((_, i) => `spec.http[${i}].timeout`),
      );
    });

    it('checks retries: attempts, retryOn policies and status codes, perTryTimeout', () => {
      assertErrors(
        `
        hosts: [reviews]
        http:
        - retries: {attempts: 3, perTryTimeout: 2s, retryOn: "503,retriable-status-codes,5xx,cancelled"}
          route: [{destination: {host: reviews}}]
        - retries: {attempts: -1}
          route: [{destination: {host: reviews}}]
        - retries: {attempts: 0, perTryTimeout: 1s}
          route: [{destination: {host: reviews}}]
        - retries: {attempts: 2, retryOn: "5xx, reset", perTryTimeout: 0ms}
          route: [{destination: {host: reviews}}]
        `,
        [
          'spec.http[1].retries.attempts',
          'spec.http[2].retries.attempts',
          'spec.http[3].retries.perTryTimeout',
          'spec.http[3].retries.retryOn',
        ],
      );
    });

    it('checks fault injection: a delay or an abort, percentages, statuses', () => {
      const result = assertErrors(
        `
        hosts: [reviews]
        http:
        - fault: {}
          route: [{destination: {host: reviews}}]
        - fault:
            delay: {fixedDelay: 7s, percentage: {value: 150}}
            abort: {grpcStatus: NOPE}
          route: [{destination: {host: reviews}}]
        - fault:
            delay: {percent: 100}
            abort: {percentage: {value: 10}}
          route: [{destination: {host: reviews}}]
        - fault:
            delay: {fixedDelay: 1s, percent: 101}
            abort: {httpStatus: 503, http2Error: x}
          route: [{destination: {host: reviews}}]
        `,
        [
          'spec.http[0].fault',
          'spec.http[1].fault.delay.percentage.value',
          'spec.http[1].fault.abort.grpcStatus',
          'spec.http[2].fault.delay.fixedDelay',
          'spec.http[3].fault.delay.percent',
          // httpStatus and http2Error exclude each other, and http2Error is not supported at all.
          'spec.http[3].fault.abort.http2Error',
          'spec.http[3].fault.abort.http2Error',
        ],
      );
      assert.deepEqual(paths(result.warnings.filter((w) => w.code === 'WEFT-V0013')), ['spec.http[2].fault.abort']);
    });

    it('checks redirects, direct responses and rewrites', () => {
      assertErrors(
        `
        hosts: [reviews]
        http:
        - redirect: {}
        - redirect: {uri: /a, redirectCode: 200, scheme: ftp, port: 70000}
        - directResponse: {status: 99, body: {string: x, bytes: eA==}}
        - directResponse: {body: {string: missing status}}
        - rewrite: {}
          route: [{destination: {host: reviews}}]
        - rewrite: {uri: /a, uriRegexRewrite: {match: "^/a", rewrite: /b}}
          route: [{destination: {host: reviews}}]
        - rewrite: {uriRegexRewrite: {match: "(", rewrite: /b}}
          route: [{destination: {host: reviews}}]
        - redirect: {uri: /a}
          rewrite: {uri: /b}
        `,
        [
          'spec.http[0].redirect',
          'spec.http[1].redirect.redirectCode',
          'spec.http[1].redirect.scheme',
          'spec.http[1].redirect.port',
          'spec.http[2].directResponse.body.bytes',
          'spec.http[2].directResponse.status',
          'spec.http[3].directResponse.status',
          'spec.http[4].rewrite',
          'spec.http[5].rewrite.uriRegexRewrite',
          'spec.http[6].rewrite.uriRegexRewrite.match',
          'spec.http[7].rewrite',
        ],
      );
    });

    it('checks header manipulation names and values, and a single authority rewrite', () => {
      assertErrors(
        `
        hosts: [reviews]
        http:
        - headers:
            request:
              set: {":path": /x, x-ok: "%HOSTNAME%", x-percent: "100%%"}
              add: {x-bad-value: "abc%123"}
              remove: [host]
            response:
              set: {host: x}
          route: [{destination: {host: reviews}}]
        - rewrite: {authority: a.example.com}
          headers: {request: {set: {":authority": b.example.com}}}
          route: [{destination: {host: reviews}}]
        `,
        [
          'spec.http[0].headers.request.set[":path"]',
          'spec.http[0].headers.request.add["x-bad-value"]',
          'spec.http[0].headers.request.remove[0]',
          'spec.http[0].headers.response.set.host',
          'spec.http[1].headers.request.set[":authority"]',
        ],
      );
    });

    it('checks CORS policies and mirrors', () => {
      const result = assertErrors(
        `
        hosts: [reviews]
        http:
        - corsPolicy:
            allowOrigins: [{}, {regex: "https://.*\\\\.example\\\\.com"}]
            allowOrigin: ["https://old.example.com"]
            allowMethods: [GET, FETCH]
            allowHeaders: ["bad header"]
            maxAge: 1.5s
          route: [{destination: {host: reviews}}]
        - mirror: {host: reviews, subset: v2}
          mirrors: [{destination: {host: reviews}}]
          mirrorPercentage: {value: 150}
          route: [{destination: {host: reviews}}]
        - mirrors: [{percentage: {value: 50}}]
          mirrorPercent: 50
          route: [{destination: {host: reviews}}]
        `,
        [
          'spec.http[0].corsPolicy.allowOrigins[0]',
          'spec.http[0].corsPolicy.allowMethods[1]',
          'spec.http[0].corsPolicy.allowHeaders[0]',
          'spec.http[0].corsPolicy.maxAge',
          'spec.http[1].mirrorPercentage.value',
          'spec.http[1].mirrors',
          'spec.http[2].mirrors[0].destination',
        ],
      );
      const deprecations = result.warnings.filter((w) => w.code === 'WEFT-V0012');
      assert.deepEqual(paths(deprecations), ['spec.http[0].corsPolicy.allowOrigin', 'spec.http[2].mirrorPercent']);
    });

    it('allows JWT claim routing only on gateways', () => {
      const header = '{"@request.auth.claims.groups": {exact: admin}}';
      assertErrors(
        `
        hosts: [reviews]
        http: [{match: [{headers: ${header}}], route: [{destination: {host: reviews}}]}]
      `,
        ['spec.http[0].match[0].headers["@request.auth.claims.groups"]'],
      );
      assertErrors(
        `
        hosts: [reviews.example.com]
        gateways: [ingress]
        http: [{match: [{headers: ${header}}], route: [{destination: {host: reviews}}]}]
      `,
        [],
      );
    });

    it('warns about rules that can never match (IST0130, IST0131)', () => {
      const result = assertErrors(
        `
        hosts: [reviews]
        http:
        - name: jason
          match: [{headers: {end-user: {exact: jason}}}]
          route: [{destination: {host: reviews, subset: v2}}]
        - name: jason-again
          match: [{name: same, headers: {end-user: {exact: jason}}}]
          route: [{destination: {host: reviews, subset: v3}}]
        - route: [{destination: {host: reviews, subset: v1}}]
        - match: [{uri: {prefix: /late}}]
          route: [{destination: {host: reviews, subset: v1}}]
        `,
        [],
      );
      assert.deepEqual(
        result.warnings.map((w) => [w.code, w.path]),
        [
          ['IST0131', 'spec.http[1].match[0]'],
          ['IST0130', 'spec.http[1]'],
          ['IST0130', 'spec.http[3]'],
        ],
      );
    });
  });

  describe('TCP and TLS routes', () => {
    it('requires sniHosts in TLS matches, SNI hosts within the VirtualService hosts, and a route', () => {
      assertErrors(
        `
        hosts: ["*.bookinfo.com"]
        gateways: [mygateway]
        tls:
        - match: [{port: 443}]
          route: [{destination: {host: login.prod.svc.cluster.local}}]
        - match: [{sniHosts: [login.example.com]}]
          route: [{destination: {host: login.prod.svc.cluster.local}}]
        - match: [{sniHosts: [login.bookinfo.com], destinationSubnets: [10.0.0.0/33]}]
        - route: [{destination: {host: login.prod.svc.cluster.local}}]
        `,
        [
          'spec.tls[0].match[0].sniHosts',
          'spec.tls[2].match[0].destinationSubnets[0]',
          'spec.tls[2].route',
          'spec.tls[3].match',
          'spec.tls[1].match[0].sniHosts[0]',
        ],
      );
    });

    it('requires a TCP route and checks L4 matches', () => {
      assertErrors(
        `
        hosts: [mongo.prod.svc.cluster.local]
        tcp:
        - match: [{port: 27017, destinationSubnets: [10.1.0.0/16, not-an-ip]}]
        - match: [{sourceLabels: {app: mongo-client}}]
          route: [{destination: {host: mongo.backup.svc.cluster.local}}]
        `,
        ['spec.tcp[0].match[0].destinationSubnets[1]', 'spec.tcp[0].route'],
      );
    });
  });

  it('checks exportTo entries', () => {
    assertErrors(
      `
      hosts: [reviews]
      exportTo: [".", "default", "*"]
      http: [{route: [{destination: {host: reviews}}]}]
      `,
      ['spec.exportTo', 'spec.exportTo'],
    );
  });
});
