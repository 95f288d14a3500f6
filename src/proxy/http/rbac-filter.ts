// The RBAC HTTP filter (envoy.filters.http.rbac) on the request path: shadow rules evaluated and
// counted, enforced rules deciding allow / 403 "RBAC: access denied", action LOG marking the
// request for the access log (`envoy.common` `access_log_hint`). Policies are compiled in
// config/rbac.ts; this module only evaluates them against the stream.
import type { HttpFilterConfig } from '../config/model';
import { addressBytes, evaluateRbac, rbacDeniedDetails, type AuthzSubject, type CompiledRbac, type RbacDecision, type RbacFilterSettings } from '../config/rbac';
import type { NamedCounter, ProxyStats } from '../stats';
import type { HttpStream } from './http-stream';

/** Envoy's metadata namespaces: the RBAC filter's own, and the one access loggers read. */
export const HTTP_RBAC_METADATA = 'envoy.filters.http.rbac';
export const COMMON_METADATA = 'envoy.common';

/** An HttpStream as RBAC matchers see it; addresses parsed once per request. */
class HttpAuthzSubject implements AuthzSubject {
  private direct: Uint8Array | null | undefined;
  private remote: Uint8Array | null | undefined;
  private destination: Uint8Array | null | undefined;

  constructor(private readonly s: HttpStream) {}

  get request(): HttpStream {
    return this.s;
  }
  get tls() {
    return this.s.tls;
  }
  get requestedServerName(): string {
    return this.s.tls?.serverName ?? '';
  }
  get destinationPort(): number {
    return this.s.destinationPort;
  }
  destinationIp(): Uint8Array | undefined {
    if (this.destination === undefined) this.destination = addressBytes(this.s.exchange.localAddress) ?? null;
    return this.destination ?? undefined;
  }
  directRemoteIp(): Uint8Array | undefined {
    if (this.direct === undefined) this.direct = addressBytes(this.s.remoteAddress) ?? null;
    return this.direct ?? undefined;
  }
  remoteIp(): Uint8Array | undefined {
    if (this.remote === undefined) {
      const client = this.s.clientAddress();
      this.remote = client === this.s.remoteAddress ? (this.directRemoteIp() ?? null) : (addressBytes(client) ?? null);
    }
    return this.remote ?? undefined;
  }
  metadata(filter: string): Readonly<Record<string, unknown>> | undefined {
    return this.s.metadata(filter);
  }
}

export interface RbacCounters {
  allowed: NamedCounter;
  denied: NamedCounter;
  shadowAllowed: NamedCounter;
  shadowDenied: NamedCounter;
}

/**
 * Envoy's RBAC stats: `<scope>rbac.<rules_stat_prefix>allowed|denied` and
 * `<scope>rbac.<shadow_rules_stat_prefix>shadow_allowed|shadow_denied`, where the scope is
 * `http.<hcm stat_prefix>.` for the HTTP filter and the filter's own stat_prefix for the network
 * filter.
 */
export function rbacCounters(stats: ProxyStats, settings: RbacFilterSettings, scopeKey: string, scope: () => { text: string; prom: string; labels: Record<string, string> }): RbacCounters {
  const c = stats.scopedCounters(settings, scopeKey, () => {
    const base = scope();
    return {
      scope: base,
      names: {
        allowed: `${settings.rulesStatPrefix}allowed`,
        denied: `${settings.rulesStatPrefix}denied`,
        shadowAllowed: `${settings.shadowRulesStatPrefix}shadow_allowed`,
        shadowDenied: `${settings.shadowRulesStatPrefix}shadow_denied`,
      },
    };
  });
  return c;
}

/**
 * Shadow rules: counted, published as `<prefix>shadow_effective_policy_id` and
 * `<prefix>shadow_engine_result` in the filter's metadata namespace, never enforced.
 */
export function shadowMetadata(settings: RbacFilterSettings, d: RbacDecision): Record<string, unknown> {
  const out: Record<string, unknown> = { [`${settings.shadowRulesStatPrefix}shadow_engine_result`]: d.allowed ? 'allowed' : 'denied' };
  if (d.matchedPolicy !== undefined) out[`${settings.shadowRulesStatPrefix}shadow_effective_policy_id`] = d.matchedPolicy;
  return out;
}

/** Evaluates one rules block; LOG sets `envoy.common` `access_log_hint` to whether a policy matched. */
function decide(s: HttpStream, rules: CompiledRbac, subject: AuthzSubject): RbacDecision {
  const d = evaluateRbac(rules, subject);
  if (rules.action === 'LOG') s.setMetadata(COMMON_METADATA, { access_log_hint: d.matchedPolicy !== undefined });
  return d;
}

/** Runs one RBAC filter. Returns true when the request was denied (the stream has ended). */
export function applyRbac(s: HttpStream, filter: Extract<HttpFilterConfig, { kind: 'rbac' }>): boolean {
  const settings = filter.settings;
  if (!settings.rules && !settings.shadowRules) return false;
  const subject = (s.authzSubject ??= new HttpAuthzSubject(s));
  const prefix = s.hcm.statPrefix;
  const counters = rbacCounters(s.runtime.stats, settings, prefix, () => ({
    text: `http.${prefix}.rbac.`,
    prom: 'envoy_http_rbac_',
    labels: { envoy_http_conn_manager_prefix: prefix },
  }));
  if (settings.shadowRules) {
    const d = decide(s, settings.shadowRules, subject);
    (d.allowed ? counters.shadowAllowed : counters.shadowDenied).value++;
    s.setMetadata(HTTP_RBAC_METADATA, shadowMetadata(settings, d));
  }
  if (!settings.rules) return false;
  const d = decide(s, settings.rules, subject);
  if (d.allowed) {
    counters.allowed.value++;
    return false;
  }
  counters.denied.value++;
  s.localReply(403, { details: rbacDeniedDetails(d), body: 'RBAC: access denied' });
  return true;
}
