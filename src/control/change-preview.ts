// What a change would do before it is made (`weft apply --dry-run`, `weft rollback --dry-run`):
// the resource and field diff against the running config, and which connected proxies would get
// new xDS configuration. The proxies are found the way the ADS server decides a push: translate
// for each proxy with the candidate snapshot, using the same translator, and compare resource by
// resource with its translation of the snapshot being served.
import type { ConfigResource } from '../config/resources';
import { resourceKey } from '../config/resources';
import type { ProxyNode } from '../model/proxy';
import { createSnapshot, type MeshConfig, type MeshSnapshot } from '../model/snapshot';
import type { Translator } from '../xds/translate';
import { diffResources, type ConfigDiff, type DiffableResource } from './config-diff';

/** Names of resources of one xDS type that would be added, changed or removed for a proxy. */
export interface XdsTypeChange {
  /** CDS, EDS, LDS or RDS (or the type URL for another type). */
  type: string;
  added: string[];
  changed: string[];
  removed: string[];
}

export interface AffectedProxy {
  /** The xDS node id. */
  id: string;
  type: string;
  namespace: string;
  workloadName?: string;
  changes: XdsTypeChange[];
}

export interface ProxyImpact {
  /** Proxies connected (distinct node ids) when the preview was computed. */
  connected: number;
  affected: AffectedProxy[];
}

export interface ChangePreview {
  /** The running config's version the diff is against. */
  against?: string;
  diff: ConfigDiff;
  proxies?: ProxyImpact;
}

const SHORT_TYPE: Record<string, string> = {
  'type.googleapis.com/envoy.config.cluster.v3.Cluster': 'CDS',
  'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment': 'EDS',
  'type.googleapis.com/envoy.config.listener.v3.Listener': 'LDS',
  'type.googleapis.com/envoy.config.route.v3.RouteConfiguration': 'RDS',
};
const TYPE_ORDER = ['CDS', 'EDS', 'LDS', 'RDS'];

export interface PreviewInput {
  /** The snapshot serving now (what proxies have). */
  current: MeshSnapshot | undefined;
  candidate: readonly ConfigResource[];
  meshConfig: MeshConfig;
  /** Connected proxies; with none given, proxies are not evaluated. */
  proxies?: readonly ProxyNode[];
  translate: Translator;
}

export function previewChange(input: PreviewInput): ChangePreview {
  const before = new Map<string, DiffableResource>(input.current ? [...input.current.resources].map(([k, r]) => [k, r as DiffableResource]) : []);
  const after = new Map<string, DiffableResource>(input.candidate.map((r) => [resourceKey(r), r as DiffableResource]));
  const preview: ChangePreview = { ...(input.current ? { against: input.current.version } : {}), diff: diffResources(before, after) };
  if (!input.proxies) return preview;
  const proxies = distinctById(input.proxies);
  if (!input.current || preview.diff.resources.length === 0) {
    preview.proxies = { connected: proxies.length, affected: [] };
    return preview;
  }
  const candidate = createSnapshot({
    sequence: input.current.sequence + 1,
    reason: 'preview',
    resources: input.candidate,
    meshConfig: input.meshConfig,
  });
  const affected: AffectedProxy[] = [];
  for (const proxy of proxies) {
    const changes = compareTranslations(input.translate(input.current, proxy), input.translate(candidate, proxy));
    if (changes.length === 0) continue;
    affected.push({ id: proxy.id, type: proxy.type, namespace: proxy.namespace, ...(proxy.workloadName ? { workloadName: proxy.workloadName } : {}), changes });
  }
  preview.proxies = { connected: proxies.length, affected };
  return preview;
}

function distinctById(proxies: readonly ProxyNode[]): ProxyNode[] {
  const byId = new Map<string, ProxyNode>();
  for (const p of proxies) byId.set(p.id, p);
  return [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** Resource-by-resource differences between two translations for one proxy, per xDS type. */
export function compareTranslations(
  before: Readonly<Record<string, ReadonlyMap<string, unknown>>>,
  after: Readonly<Record<string, ReadonlyMap<string, unknown>>>,
): XdsTypeChange[] {
  const out: XdsTypeChange[] = [];
  for (const typeUrl of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const old = before[typeUrl] ?? new Map<string, unknown>();
    const now = after[typeUrl] ?? new Map<string, unknown>();
    const change: XdsTypeChange = { type: SHORT_TYPE[typeUrl] ?? typeUrl, added: [], changed: [], removed: [] };
    for (const [name, resource] of now) {
      const previous = old.get(name);
      if (previous === undefined) change.added.push(name);
      else if (previous !== resource && JSON.stringify(previous) !== JSON.stringify(resource)) change.changed.push(name);
    }
    for (const name of old.keys()) if (!now.has(name)) change.removed.push(name);
    if (change.added.length + change.changed.length + change.removed.length > 0) out.push(change);
  }
  const rank = (t: string) => (TYPE_ORDER.indexOf(t) + 1 || TYPE_ORDER.length + 1);
  return out.sort((a, b) => rank(a.type) - rank(b.type));
}
