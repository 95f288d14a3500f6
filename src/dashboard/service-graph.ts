// The service graph behind /api/v1/graph: one node per workload (grouped by app, labelled with
// its version), a service node where the callee has no workload (an external host), an "unknown"
// node for callers outside the mesh; one edge per caller -> callee with its golden signals over
// the window, laid out left to right. Kiali's versioned-app graph, without the service hops.
import { layoutGraph } from './graph-layout';
import type { EdgeIdentity } from './istio-traffic';
import type { ProxyHealth } from './proxy-health';
import { countedInGraph, TrafficSum, type TrafficNumbers } from './traffic-numbers';
import type { WindowTotals } from './traffic-history';

/** A connected proxy, as the graph needs it. */
export interface MeshProxy {
  id: string;
  type: 'sidecar' | 'router' | 'proxyless';
  namespace: string;
  workload?: string;
  labels: Record<string, string>;
  health: ProxyHealth;
  snapshotVersion?: string;
  /** Where its stats are scraped, and how the last scrape went. */
  scrape?: { url: string; ok: boolean; error?: string; at?: string };
}

export type NodeHealth = 'healthy' | 'degraded' | 'failure' | 'idle';

export interface GraphNode {
  /** `namespace/workload`, `service:namespace/name`, or `unknown`. */
  id: string;
  kind: 'workload' | 'service' | 'unknown';
  /** Workload (or service) name: the label, and the data-node attribute in the UI. */
  name: string;
  namespace: string;
  app: string;
  /** Empty when unknown. */
  version: string;
  gateway: boolean;
  /** Services this workload answered for in the window (or ever, when idle). */
  services: string[];
  /** Traffic into the node over the window. */
  inbound: TrafficNumbers;
  health: NodeHealth;
  proxy?: { id: string; state: ProxyHealth['state']; unhealthy: boolean; nacks: string[]; waitingSeconds?: number; scrapeError?: string };
  x: number;
  y: number;
  layer: number;
}

export interface GraphEdge {
  /** `<source id>-><target id>`. */
  id: string;
  source: string;
  target: string;
  /** http, grpc, tcp (joined with "," when mixed). */
  protocol: string;
  /** Destination services the calls went to (FQDNs). */
  services: string[];
  /** Seen earlier in the history, but no traffic within the window. */
  idle: boolean;
  /** Share of the source's calls to the same service(s) that took this edge (a traffic split), 0..1. */
  serviceShare: number | null;
  numbers: TrafficNumbers;
}

export interface GraphGroup {
  /** `namespace/app`. */
  id: string;
  app: string;
  namespace: string;
  nodes: string[];
}

export interface ServiceGraph {
  generatedAt: string;
  /** The window asked for, and how much collected history it actually covers. */
  windowSeconds: number;
  coveredSeconds: number;
  nodes: GraphNode[];
  edges: GraphEdge[];
  groups: GraphGroup[];
  layout: { width: number; height: number; columnWidth: number; rowHeight: number };
}

export interface GraphInput {
  window: WindowTotals;
  /** The whole retained history: edges in it but not in the window are drawn idle. */
  history: WindowTotals;
  proxies: readonly MeshProxy[];
  windowSeconds: number;
  now: number;
}

/** Error share above which a node or edge counts as failing (Kiali's default 5xx failure threshold is 10%). */
export const FAILURE_ERROR_RATE = 0.1;

const COLUMN_WIDTH = 420;
const ROW_HEIGHT = 86;

interface NodeDraft {
  id: string;
  kind: GraphNode['kind'];
  name: string;
  namespace: string;
  app: string;
  version: string;
  gateway: boolean;
  services: Set<string>;
  inbound: TrafficSum;
  outboundRequests: number;
  proxy?: MeshProxy;
}

interface EdgeDraft {
  source: string;
  target: string;
  protocols: Set<string>;
  services: Set<string>;
  sum: TrafficSum;
  idle: boolean;
}

export function buildServiceGraph(input: GraphInput): ServiceGraph {
  const meshed = new Set(input.proxies.filter((p) => p.type === 'sidecar' && p.workload).map((p) => `${p.namespace}/${p.workload}`));
  const nodes = new Map<string, NodeDraft>();
  const edges = new Map<string, EdgeDraft>();

  const nodeFor = (draft: Omit<NodeDraft, 'services' | 'inbound' | 'outboundRequests'>): NodeDraft => {
    let node = nodes.get(draft.id);
    if (!node) {
      node = { ...draft, services: new Set(), inbound: new TrafficSum(), outboundRequests: 0 };
      nodes.set(draft.id, node);
    }
    return node;
  };

  for (const p of input.proxies) {
    if (p.type === 'proxyless' || !p.workload) continue;
    const node = nodeFor({
      id: `${p.namespace}/${p.workload}`,
      kind: 'workload',
      name: p.workload,
      namespace: p.namespace,
      app: p.labels.app ?? p.workload,
      version: p.labels.version ?? '',
      gateway: p.type === 'router',
    });
    node.proxy = p;
  }

  const addSeries = (totals: WindowTotals, inWindow: boolean) => {
    for (const series of totals.edges.values()) {
      const id = series.identity;
      if (!countedInGraph(id, meshed)) continue;
      const source = sourceNode(id, nodeFor);
      const target = targetNode(id, nodeFor);
      const key = `${source.id}->${target.id}`;
      let edge = edges.get(key);
      if (!edge) {
        edge = { source: source.id, target: target.id, protocols: new Set(), services: new Set(), sum: new TrafficSum(), idle: !inWindow };
        edges.set(key, edge);
      }
      if (id.destinationService !== 'unknown') {
        edge.services.add(id.destinationService);
        target.services.add(id.destinationService);
      }
      if (!inWindow) continue;
      edge.protocols.add(id.protocol);
      edge.sum.add(series);
      target.inbound.add(series);
      source.outboundRequests += series.traffic.requests + series.traffic.tcpOpened;
    }
  };
  addSeries(input.window, true);
  addSeries(input.history, false);

  const seconds = input.window.seconds;
  const graphEdges: GraphEdge[] = [...edges.values()].map((e) => ({
    id: `${e.source}->${e.target}`,
    source: e.source,
    target: e.target,
    protocol: [...e.protocols].sort().join(',') || 'http',
    services: [...e.services].sort(),
    idle: e.idle,
    serviceShare: null,
    numbers: e.sum.numbers(seconds),
  }));
  fillServiceShares(graphEdges);

  const graphNodes: GraphNode[] = [...nodes.values()].map((n) => {
    const inbound = n.inbound.numbers(seconds);
    return {
      id: n.id,
      kind: n.kind,
      name: n.name,
      namespace: n.namespace,
      app: n.app,
      version: n.version,
      gateway: n.gateway,
      services: [...n.services].sort(),
      inbound,
      health: nodeHealth(inbound, n.outboundRequests),
      ...(n.proxy
        ? {
            proxy: {
              id: n.proxy.id,
              state: n.proxy.health.state,
              unhealthy: n.proxy.health.unhealthy,
              nacks: n.proxy.health.nacks,
              ...(n.proxy.health.waitingSeconds !== undefined ? { waitingSeconds: n.proxy.health.waitingSeconds } : {}),
              ...(n.proxy.scrape && !n.proxy.scrape.ok ? { scrapeError: n.proxy.scrape.error } : {}),
            },
          }
        : {}),
      x: 0,
      y: 0,
      layer: 0,
    };
  });

  const groups = new Map<string, GraphGroup>();
  // A service node without workloads (where failed calls to ratings end) sits in its app's box.
  const groupOf = (n: GraphNode) => (n.kind === 'unknown' || !n.namespace ? n.id : `${n.namespace}/${n.app}`);
  for (const n of graphNodes) {
    const id = groupOf(n);
    const g = groups.get(id) ?? { id, app: n.app, namespace: n.namespace, nodes: [] };
    g.nodes.push(n.id);
    groups.set(id, g);
  }
  const layout = layoutGraph(
    graphNodes.map((n) => ({ id: n.id, group: groupOf(n), sortKey: `${n.version}\u0000${n.name}` })),
    graphEdges,
    { columnWidth: COLUMN_WIDTH, rowHeight: ROW_HEIGHT },
  );
  for (const n of graphNodes) {
    const p = layout.positions.get(n.id)!;
    n.x = p.x;
    n.y = p.y;
    n.layer = p.layer;
  }
  graphNodes.sort((a, b) => a.layer - b.layer || a.y - b.y);
  graphEdges.sort((a, b) => (a.id < b.id ? -1 : 1));
  return {
    generatedAt: new Date(input.now).toISOString(),
    windowSeconds: input.windowSeconds,
    coveredSeconds: Math.round(seconds * 10) / 10,
    nodes: graphNodes,
    edges: graphEdges,
    groups: [...groups.values()].filter((g) => g.nodes.length > 0).sort((a, b) => (a.id < b.id ? -1 : 1)),
    layout: { width: layout.width, height: layout.height, columnWidth: COLUMN_WIDTH, rowHeight: ROW_HEIGHT },
  };
}

const KUBE_HOST = /^([^.]+)\.([^.]+)\.svc\./;

type NodeMaker = (draft: Omit<NodeDraft, 'services' | 'inbound' | 'outboundRequests'>) => NodeDraft;

function sourceNode(id: EdgeIdentity, nodeFor: NodeMaker): NodeDraft {
  if (id.sourceWorkload === 'unknown') return nodeFor({ id: 'unknown', kind: 'unknown', name: 'unknown', namespace: '', app: 'unknown', version: '', gateway: false });
  return nodeFor({
    id: `${id.sourceNamespace}/${id.sourceWorkload}`,
    kind: 'workload',
    name: id.sourceWorkload,
    namespace: id.sourceNamespace,
    app: id.sourceApp === 'unknown' ? id.sourceWorkload : id.sourceApp,
    version: id.sourceVersion === 'unknown' ? '' : id.sourceVersion,
    gateway: false,
  });
}

function targetNode(id: EdgeIdentity, nodeFor: NodeMaker): NodeDraft {
  if (id.destinationWorkload !== 'unknown') {
    return nodeFor({
      id: `${id.destinationNamespace}/${id.destinationWorkload}`,
      kind: 'workload',
      name: id.destinationWorkload,
      namespace: id.destinationNamespace,
      app: id.destinationApp === 'unknown' ? id.destinationWorkload : id.destinationApp,
      version: id.destinationVersion === 'unknown' ? '' : id.destinationVersion,
      gateway: false,
    });
  }
  const name = id.destinationServiceName !== 'unknown' ? id.destinationServiceName : id.destinationService;
  // A request that never reached a workload (a fault abort) may carry no service namespace; the
  // Kubernetes host name still has it.
  const namespace = id.destinationServiceNamespace !== 'unknown' ? id.destinationServiceNamespace : (KUBE_HOST.exec(id.destinationService)?.[2] ?? '');
  return nodeFor({ id: `service:${namespace}/${name}`, kind: 'service', name, namespace, app: name, version: '', gateway: false });
}

/** Per source and destination service: how the calls split over the destination's workloads. */
function fillServiceShares(edges: GraphEdge[]): void {
  const totals = new Map<string, number>();
  const keyOf = (e: GraphEdge) => `${e.source}\u0000${e.services.join(',')}`;
  for (const e of edges) totals.set(keyOf(e), (totals.get(keyOf(e)) ?? 0) + e.numbers.requests);
  for (const e of edges) {
    const total = totals.get(keyOf(e)) ?? 0;
    e.serviceShare = total > 0 ? Math.round((e.numbers.requests / total) * 1000) / 1000 : null;
  }
}

function nodeHealth(inbound: TrafficNumbers, outboundRequests: number): NodeHealth {
  if (inbound.errorRate !== null && inbound.errorRate >= FAILURE_ERROR_RATE) return 'failure';
  if (inbound.errorRate !== null && inbound.errorRate > 0) return 'degraded';
  if (inbound.requests > 0 || outboundRequests > 0 || inbound.tcp) return 'healthy';
  return 'idle';
}
