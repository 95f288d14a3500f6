// The shapes translation produces: Envoy resources in their JSON (config_dump) form.

/** One Envoy resource in JSON form (see ../protos.ts); `name` is its xDS resource name. */
export type EnvoyResource = Record<string, unknown> & { name: string };

/** Everything generated for one proxy, by type URL; each map is sorted by resource name. */
export interface GeneratedResources {
  readonly [typeUrl: string]: ReadonlyMap<string, EnvoyResource>;
}

/**
 * Gives a resource whose proto has no `name` field (ClusterLoadAssignment names itself by
 * `cluster_name`) its xDS name as a non-enumerable property: readable as `.name`, but invisible to
 * JSON.stringify, Object.keys and encodeResource, so the object still encodes as the real proto.
 */
export function withHiddenName<T extends Record<string, unknown>>(resource: T, name: string): T & { name: string } {
  Object.defineProperty(resource, 'name', { value: name, enumerable: false, writable: false, configurable: false });
  return resource as T & { name: string };
}
