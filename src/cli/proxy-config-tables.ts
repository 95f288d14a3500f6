// Envoy's admin /config_dump (and /clusters?format=json) rendered the way `istioctl proxy-config`
// prints them: clusters by service, port, subset and direction; listeners by address, port and
// filter-chain match; routes by route config, virtual host and match; endpoints with health;
// SDS secrets with their certificates' validity. Pure: JSON in, text out.
import { X509Certificate } from 'node:crypto';
import { formatTable } from './table';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = Record<string, any>;

function section(dump: Json, typeSuffix: string): Json {
  const configs: Json[] = Array.isArray(dump?.configs) ? dump.configs : [];
  return configs.find((c) => typeof c['@type'] === 'string' && c['@type'].endsWith(`.${typeSuffix}`)) ?? {};
}

function list(value: unknown): Json[] {
  return Array.isArray(value) ? value : [];
}

// ---------------------------------------------------------------------------------------------
// Reading the dump

export function dumpClusters(dump: Json): Json[] {
  const s = section(dump, 'ClustersConfigDump');
  return [...list(s.static_clusters), ...list(s.dynamic_active_clusters), ...list(s.dynamic_warming_clusters)]
    .map((c) => c.cluster)
    .filter(Boolean);
}

export function dumpListeners(dump: Json): Json[] {
  const s = section(dump, 'ListenersConfigDump');
  return [
    ...list(s.static_listeners).map((l) => l.listener),
    ...list(s.dynamic_listeners).map((l) => l.active_state?.listener ?? l.warming_state?.listener),
  ].filter(Boolean);
}

/** RDS route configurations, then those inlined in listeners' HTTP connection managers. */
export function dumpRoutes(dump: Json): Json[] {
  const s = section(dump, 'RoutesConfigDump');
  const dynamic = [...list(s.static_route_configs), ...list(s.dynamic_route_configs)].map((r) => r.route_config).filter(Boolean);
  const inline = dumpListeners(dump).flatMap((l) =>
    filterChains(l).flatMap((chain) => list(chain.filters).map((f) => f.typed_config?.route_config).filter(Boolean)),
  );
  return [...dynamic, ...inline];
}

export function dumpEndpoints(dump: Json): Json[] {
  const s = section(dump, 'EndpointsConfigDump');
  return [...list(s.static_endpoint_configs), ...list(s.dynamic_endpoint_configs)].map((e) => e.endpoint_config).filter(Boolean);
}

/** SDS secrets (SecretsConfigDump): active ones, then warming. */
export function dumpSecrets(dump: Json): Json[] {
  const s = section(dump, 'SecretsConfigDump');
  return [...list(s.static_secrets), ...list(s.dynamic_active_secrets).map((x) => ({ ...x, status: 'ACTIVE' })), ...list(s.dynamic_warming_secrets).map((x) => ({ ...x, status: 'WARMING' }))];
}

function filterChains(listener: Json): Json[] {
  return [...list(listener.filter_chains), ...(listener.default_filter_chain ? [listener.default_filter_chain] : [])];
}

/** `reviews.default` from Istio's `/apis/networking.istio.io/v1alpha3/namespaces/default/<kind>/reviews`. */
function istioConfigName(metadata: Json | undefined): string {
  const config: unknown = metadata?.filter_metadata?.istio?.config;
  if (typeof config !== 'string') return '';
  const m = /\/namespaces\/([^/]+)\/[^/]+\/([^/]+)$/.exec(config);
  return m ? `${m[2]}.${m[1]}` : config;
}

function socketAddress(address: Json | undefined): { address: string; port: string } {
  const s = address?.socket_address;
  if (s) return { address: String(s.address ?? ''), port: String(s.port_value ?? '') };
  if (address?.pipe) return { address: String(address.pipe.path), port: '' };
  return { address: '', port: '' };
}

// ---------------------------------------------------------------------------------------------
// clusters: SERVICE FQDN, PORT, SUBSET, DIRECTION, TYPE, DESTINATION RULE

export function clustersTable(clusters: readonly Json[]): string {
  const rows = clusters.map((c) => {
    const parts = String(c.name ?? '').split('|');
    const istioName = parts.length === 4 && (parts[0] === 'outbound' || parts[0] === 'inbound');
    const type = String(c.type ?? c.cluster_type?.name ?? 'STATIC');
    return istioName
      ? [parts[3], parts[1], parts[2] || '-', parts[0], type, istioConfigName(c.metadata)]
      : [String(c.name ?? ''), '-', '-', '-', type, istioConfigName(c.metadata)];
  });
  rows.sort((a, b) => compare(a[0], b[0]) || (Number(a[1]) || 0) - (Number(b[1]) || 0) || compare(a[2], b[2]) || compare(a[3], b[3]));
  return formatTable(['SERVICE FQDN', 'PORT', 'SUBSET', 'DIRECTION', 'TYPE', 'DESTINATION RULE'], rows);
}

// ---------------------------------------------------------------------------------------------
// listeners: ADDRESSES, PORT, MATCH, DESTINATION

export function listenersTable(listeners: readonly Json[]): string {
  const rows: { port: number; cells: string[] }[] = [];
  for (const l of listeners) {
    const { address, port } = socketAddress(l.address);
    const addresses = [address, ...list(l.additional_addresses).map((a) => socketAddress(a.address).address)].filter(Boolean).join(',');
    const chains = filterChains(l);
    if (chains.length === 0) rows.push({ port: Number(port), cells: [addresses, port, 'ALL', ''] });
    for (const chain of chains) rows.push({ port: Number(port), cells: [addresses, port, describeChainMatch(chain.filter_chain_match), describeDestination(chain)] });
  }
  rows.sort((a, b) => a.port - b.port || compare(a.cells[0], b.cells[0]));
  return formatTable(['ADDRESSES', 'PORT', 'MATCH', 'DESTINATION'], rows.map((r) => r.cells));
}

function describeChainMatch(m: Json | undefined): string {
  if (!m) return 'ALL';
  const parts: string[] = [];
  if (list(m.server_names).length) parts.push(`SNI: ${m.server_names.join(',')}`);
  if (m.transport_protocol) parts.push(`Trans: ${m.transport_protocol}`);
  if (list(m.application_protocols).length) parts.push(`App: ${m.application_protocols.join(',')}`);
  const ranges = list(m.prefix_ranges).map((r) => `${r.address_prefix}/${r.prefix_len ?? 32}`);
  if (ranges.length || m.destination_port !== undefined) parts.push(`Addr: ${ranges.length ? ranges.join(',') : '*'}:${m.destination_port ?? '*'}`);
  return parts.length ? parts.join('; ') : 'ALL';
}

function describeDestination(chain: Json): string {
  for (const f of list(chain.filters)) {
    const config = f.typed_config ?? {};
    const type = String(config['@type'] ?? f.name ?? '');
    if (type.endsWith('HttpConnectionManager') || f.name === 'envoy.filters.network.http_connection_manager') {
      if (config.rds?.route_config_name) return `Route: ${config.rds.route_config_name}`;
      if (config.route_config) return `Inline Route: ${config.route_config.name ?? ''}`.trimEnd();
      return 'HTTP';
    }
    if (type.endsWith('TcpProxy') || f.name === 'envoy.filters.network.tcp_proxy') {
      if (config.cluster) return `Cluster: ${config.cluster}`;
      const weighted = list(config.weighted_clusters?.clusters).map((c) => c.name);
      if (weighted.length) return `Clusters: ${weighted.join(',')}`;
      return 'TCP';
    }
  }
  return 'Non-HTTP/Non-TCP';
}

// ---------------------------------------------------------------------------------------------
// routes: NAME, VHOST NAME, DOMAINS, MATCH, VIRTUAL SERVICE

export function routesTable(routeConfigs: readonly Json[]): string {
  const rows: string[][] = [];
  for (const rc of routeConfigs) {
    for (const vhost of list(rc.virtual_hosts)) {
      const routes = list(vhost.routes);
      const base = [String(rc.name ?? ''), String(vhost.name ?? ''), describeDomains(list(vhost.domains) as unknown as string[])];
      if (routes.length === 0) rows.push([...base, '', '']);
      for (const r of routes) rows.push([...base, describeRouteMatch(r.match), istioConfigName(r.metadata) || (r.direct_response ? String(r.direct_response.status ?? '') : '')]);
    }
  }
  return formatTable(['NAME', 'VHOST NAME', 'DOMAINS', 'MATCH', 'VIRTUAL SERVICE'], rows);
}

/** The shortest domain and how many more (forms with a port and IPs aside), as istioctl does. */
function describeDomains(domains: readonly string[]): string {
  if (domains.length <= 1) return domains[0] ?? '';
  const names = domains.filter((d) => !/:\d+$/.test(d) && !/^\d+\.\d+\.\d+\.\d+$/.test(d));
  const shown = (names.length ? names : [...domains]).sort((a, b) => a.length - b.length || compare(a, b));
  return shown.length === 1 ? shown[0] : `${shown[0]} + ${shown.length - 1} more...`;
}

function describeRouteMatch(m: Json | undefined): string {
  if (!m) return '';
  let path = '';
  if (m.prefix !== undefined) path = m.prefix === '/' ? '/*' : `${m.prefix}*`;
  else if (m.path !== undefined) path = String(m.path);
  else if (m.path_separated_prefix !== undefined) path = `${m.path_separated_prefix}/*`;
  else if (m.safe_regex?.regex !== undefined) path = `regex ${m.safe_regex.regex}`;
  const conditions = [
    ...list(m.headers).map((h) => `${h.name}${describeStringMatch(h)}`),
    ...list(m.query_parameters).map((q) => `?${q.name}${describeStringMatch(q)}`),
  ];
  return conditions.length ? `${path} (${conditions.join(', ')})` : path;
}

function describeStringMatch(h: Json): string {
  const sm = h.string_match ?? h;
  const not = h.invert_match ? '!' : '';
  if (sm.exact !== undefined) return `${not}=${sm.exact}`;
  if (sm.prefix !== undefined) return `${not}^=${sm.prefix}`;
  if (sm.suffix !== undefined) return `${not}$=${sm.suffix}`;
  if (sm.safe_regex?.regex !== undefined) return `${not}~=${sm.safe_regex.regex}`;
  if (h.present_match !== undefined) return h.present_match === !h.invert_match ? ' present' : ' absent';
  return '';
}

// ---------------------------------------------------------------------------------------------
// endpoints: ENDPOINT, STATUS, OUTLIER CHECK, CLUSTER

/**
 * From /clusters?format=json (live health, like istioctl), or from the dump's
 * ClusterLoadAssignments; `cluster`: only that cluster's endpoints (istioctl's --cluster).
 */
export function endpointsTable(source: { clusterStatuses?: readonly Json[]; loadAssignments?: readonly Json[] }, cluster?: string): string {
  const rows: string[][] = [];
  if (source.clusterStatuses) {
    for (const c of source.clusterStatuses) {
      for (const h of list(c.host_statuses)) {
        const { address, port } = socketAddress(h.address);
        rows.push([`${address}:${port}`, String(h.health_status?.eds_health_status ?? 'HEALTHY'), h.health_status?.failed_outlier_check ? 'FAILED' : 'OK', String(c.name ?? '')]);
      }
    }
  } else {
    for (const cla of source.loadAssignments ?? []) {
      for (const locality of list(cla.endpoints)) {
        for (const e of list(locality.lb_endpoints)) {
          const { address, port } = socketAddress(e.endpoint?.address);
          rows.push([`${address}:${port}`, String(e.health_status ?? 'HEALTHY'), 'OK', String(cla.cluster_name ?? '')]);
        }
      }
    }
  }
  const shown = cluster === undefined ? rows : rows.filter((r) => r[3] === cluster);
  shown.sort((a, b) => compare(a[3], b[3]) || compare(a[0], b[0]));
  return formatTable(['ENDPOINT', 'STATUS', 'OUTLIER CHECK', 'CLUSTER'], shown);
}

// ---------------------------------------------------------------------------------------------
// secrets: RESOURCE NAME, TYPE, STATUS, VALID CERT, SERIAL NUMBER, NOT AFTER, NOT BEFORE, SPIFFE ID

function dataSourceText(d: Json | undefined): string {
  if (!d) return '';
  if (typeof d.inline_bytes === 'string') return Buffer.from(d.inline_bytes, 'base64').toString('utf8');
  if (typeof d.inline_string === 'string') return d.inline_string;
  return '';
}

function pemCertificates(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
}

/** `2024-05-12T09:12:46Z`, as istioctl prints times. */
function istioTime(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function secretsTable(secrets: readonly Json[], now: Date = new Date()): string {
  const rows: string[][] = [];
  for (const entry of secrets) {
    const secret = entry.secret ?? {};
    const name = String(entry.name ?? secret.name ?? '');
    const status = String(entry.status ?? 'ACTIVE');
    const isChain = !!secret.tls_certificate;
    const pem = isChain ? dataSourceText(secret.tls_certificate?.certificate_chain) : dataSourceText(secret.validation_context?.trusted_ca);
    // A chain is described by its leaf; a trust bundle by each CA in it.
    const certs = isChain ? pemCertificates(pem).slice(0, 1) : pemCertificates(pem);
    if (certs.length === 0) rows.push([name, isChain ? 'Cert Chain' : 'CA', status, 'false', '', '', '', '']);
    for (const text of certs) {
      try {
        const cert = new X509Certificate(text);
        const notBefore = new Date(cert.validFrom);
        const notAfter = new Date(cert.validTo);
        const valid = now >= notBefore && now <= notAfter;
        const spiffe = (cert.subjectAltName ?? '').split(/,\s*/).find((n) => n.startsWith('URI:spiffe://'))?.slice(4) ?? '';
        rows.push([name, isChain ? 'Cert Chain' : 'CA', status, String(valid), cert.serialNumber.toLowerCase(), istioTime(notAfter), istioTime(notBefore), spiffe]);
      } catch {
        rows.push([name, isChain ? 'Cert Chain' : 'CA', status, 'false', '', '', '', '']);
      }
    }
  }
  return formatTable(['RESOURCE NAME', 'TYPE', 'STATUS', 'VALID CERT', 'SERIAL NUMBER', 'NOT AFTER', 'NOT BEFORE', 'SPIFFE ID'], rows);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
