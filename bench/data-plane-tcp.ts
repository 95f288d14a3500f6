// The data-plane benchmark's L4 rows: a byte pipe in front of the HTTP/1.1 backend, loaded by wrk
// and the fixed-rate client exactly as the HTTP/1.1 rows are (keep-alive connections, 1 KB
// responses), so they compare with the HTTP/1.1 `direct` row:
//   TCP weft proxy (tcp_proxy)  wrk -> Weft gateway proxy (127.0.0.4, a TCP Gateway server routed
//                               by a VirtualService `tcp` route to a Service port named `tcp`, so
//                               the proxy runs tcp_proxy, no HTTP) -> backend
//   TCP nginx proxy (stream)    wrk -> nginx `stream { proxy_pass }` -> backend
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { gatewayYaml, HOST } from './data-plane-lib';

export const TCP_PORTS = { nginxProxy: 18111, weftGateway: 18112 } as const;
/** The TCP gateway binds its listener and admin ports on its own loopback address. */
export const TCP_WEFT_HOST = '127.0.0.4';
export const TCP_ROWS = { weft: 'TCP weft proxy (tcp_proxy)', nginx: 'TCP nginx proxy (stream)' } as const;

/**
 * The `load_module` line nginx needs for `stream {}`: none when it is built in; Debian builds it as
 * a module (package libnginx-mod-stream, installed by bench/install-tools.sh).
 */
export function loadStreamModule(nginxBin: string): string {
  const v = spawnSync(nginxBin, ['-V'], { encoding: 'utf8' });
  const configure = `${v.stdout ?? ''}${v.stderr ?? ''}`;
  if (/--with-stream(\s|$)/.test(configure)) return '';
  for (const dir of ['/usr/lib/nginx/modules', '/usr/lib64/nginx/modules', '/usr/share/nginx/modules', path.join(path.dirname(nginxBin), '..', 'modules')]) {
    const file = path.join(dir, 'ngx_stream_module.so');
    if (fs.existsSync(file)) return `load_module ${file};`;
  }
  throw new Error('nginx has no stream module (hint: run `bash bench/install-tools.sh` as root; Debian: libnginx-mod-stream)');
}

/** The Istio config of the TCP row: a TCP Gateway server, and a Service port named `tcp` for the backend. */
export function tcpMeshYaml(backendPort: number): string {
  return `# The L4 row: a gateway on its own address (${TCP_WEFT_HOST}) piping every connection to the backend.
apiVersion: v1
kind: Service
metadata: {name: tcp-backend, namespace: default}
spec:
  selector: {app: tcp-backend}
  ports:
  - {name: tcp, port: ${backendPort}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: tcp-backend-1, namespace: default}
spec:
  address: ${HOST}
  labels: {app: tcp-backend}
  ports: {tcp: ${backendPort}}
---
${gatewayYaml('bench-gateway-tcp', TCP_PORTS.weftGateway, 'TCP')}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bench-tcp, namespace: default}
spec:
  hosts: ["*"]
  gateways: [bench-gateway-tcp]
  tcp:
  - route:
    - destination: {host: tcp-backend, port: {number: ${backendPort}}}
`;
}
