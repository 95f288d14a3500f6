// Resource names as kubectl prints them: `virtualservice.networking.istio.io/reviews`,
// `service/reviews`, and `virtualservices.networking.istio.io "reviews"` in messages.
import { lookupKind, type KindInfo } from '../config/kinds';
import { knownKindNames, pluralName } from '../control/config-api-contract';
import { CliError } from './cli-errors';

export { pluralName };

export function kindInfo(kind: string): KindInfo {
  const info = lookupKind(kind);
  if (!info) {
    throw new CliError(`the control plane doesn't have a resource type "${kind}" (hint: known types are ${knownKindNames()})`);
  }
  return info;
}

/** `virtualservice.networking.istio.io`, or `service` for the core group. */
export function singularName(info: KindInfo): string {
  return info.group ? `${info.kind.toLowerCase()}.${info.group}` : info.kind.toLowerCase();
}

/** `virtualservice.networking.istio.io/reviews`. */
export function qualifiedName(kind: string, name: string): string {
  const info = lookupKind(kind);
  return `${info ? singularName(info) : kind.toLowerCase()}/${name}`;
}
