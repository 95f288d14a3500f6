// The translate stage's entry point: translateForProxy, a pure function (snapshot, proxy) -> Envoy
// resources. The dispatch on the proxy's kind and the sharing between proxies are in translator.ts.
import { createTranslator, type Translator } from './translator';

export type { EnvoyResource, GeneratedResources } from './types';
export { parseProxyNode } from './node';
export type { XdsNodeLike } from './node';
export { createTranslator } from './translator';
export type { Translator, TranslatorOptions, TranslatorStats } from './translator';
export type { FreezeMode } from './shared-resources';

/**
 * Everything the proxy should receive, by type URL (Cluster, ClusterLoadAssignment, Listener,
 * RouteConfiguration), each map sorted by resource name. Pure and deterministic: reads only the
 * snapshot and the proxy, never the clock, the network or randomness; never mutates its inputs.
 *
 * Returned maps and resources are shared with other proxies and snapshots and must be treated as
 * immutable (resources are deep-frozen). This is the process-wide default translator; a component
 * that wants its own memory (a second control plane in one process) uses createTranslator().
 */
export const translateForProxy: Translator = createTranslator();
