// Resource names as kubectl prints them: `virtualservice.networking.istio.io/reviews`,
// `service/reviews`, and `virtualservices.networking.istio.io "reviews"` in messages.
import { KNOWN_KINDS, lookupKind, type KindInfo } from '../config/kinds';
import { CliError } from './cli-errors';

export function kindInfo(kind: string): KindInfo {
  const info = lookupKind(kind);
  if (!info) {
    const known = KNOWN_KINDS.map((k) => (k.shortNames.length ? `${k.plural} (${k.shortNames.join(', ')})` : k.plural)).join(', ');
    throw new CliError(`the control plane doesn't have a resource type "${kind}" (hint: known types are ${known})`);
  }
  return info;
}

/** `virtualservice.networking.istio.io`, or `service` for the core group. */
export function singularName(info: KindInfo): string {
  return info.group ? `${info.kind.toLowerCase()}.${info.group}` : info.kind.toLowerCase();
}

/** `virtualservices.networking.istio.io`, or `services`. */
export function pluralName(info: KindInfo): string {
  return info.group ? `${info.plural}.${info.group}` : info.plural;
}

/** `virtualservice.networking.istio.io/reviews`. */
export function qualifiedName(kind: string, name: string): string {
  const info = lookupKind(kind);
  return `${info ? singularName(info) : kind.toLowerCase()}/${name}`;
}
