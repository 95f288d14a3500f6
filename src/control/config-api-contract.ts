// What the config API and its clients (the `weft` CLI) agree on, kept free of the server's
// dependencies so the CLI loads only this: the bundle media type and kubectl's resource names.
import { KNOWN_KINDS, type KindInfo } from '../config/kinds';

/** The CLI's request body: several named inputs (`{"sources": [{"name", "content"}], "message"}`) in one change. */
export const MANIFEST_BUNDLE_TYPE = 'application/vnd.weft.manifests+json';

/** `virtualservices.networking.istio.io`, or `services` for the core group (kubectl's resource names). */
export function pluralName(info: KindInfo): string {
  return info.group ? `${info.plural}.${info.group}` : info.plural;
}

/** `virtualservices (vs), destinationrules (dr), ...` for hints. */
export function knownKindNames(): string {
  return KNOWN_KINDS.map((k) => (k.shortNames.length ? `${k.plural} (${k.shortNames.join(', ')})` : k.plural)).join(', ');
}

/** POST /api/v1/route (`weft route`): one request to ask about, and optional candidate files. */
export interface RouteRequestBody {
  url: string;
  /** The calling workload (its sidecar); absent: the ingress gateway whose Gateway serves the URL. */
  from?: string;
  namespace?: string;
  method?: string;
  headers?: [string, string][];
  /** Candidate files applied on top of the running config for the answer only (as `apply --dry-run` reads them). */
  sources?: { name: string; content: string }[];
}
