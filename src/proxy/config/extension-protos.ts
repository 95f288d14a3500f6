// Envoy extension messages the proxy reads inside Any fields, which the shared codec
// (src/xds/protos.ts) does not load itself. Loading them into the shared protobufjs root before
// the first decode makes decodeResource() expand those Any values like every other one.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { envoyProtoRoot, PROTO_INCLUDE_DIRS } from '../../xds/protos';

const EXTENSION_PROTO_FILES = [
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  'envoy/extensions/retry/host/previous_hosts/v3/previous_hosts.proto',
  'envoy/extensions/access_loggers/file/v3/file.proto',
  'envoy/extensions/access_loggers/stream/v3/stream.proto',
  'envoy/extensions/transport_sockets/raw_buffer/v3/raw_buffer.proto',
];

let loaded = false;

/** Idempotent; call before decoding any resource. */
export function loadProxyExtensionProtos(): void {
  if (loaded) return;
  const root = envoyProtoRoot();
  const files = EXTENSION_PROTO_FILES.filter((f) => !root.files.some((loadedFile) => loadedFile.endsWith(f))).map((f) => {
    for (const dir of PROTO_INCLUDE_DIRS) {
      const candidate = path.join(dir, f);
      if (fs.existsSync(candidate)) return candidate;
    }
    return f;
  });
  if (files.length) {
    root.loadSync(files, { keepCase: true });
    root.resolveAll();
  }
  loaded = true;
}
