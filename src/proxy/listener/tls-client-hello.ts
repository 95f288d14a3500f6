// Envoy's tls_inspector, without terminating TLS: reads the server name (SNI) and ALPN list from
// a TLS ClientHello so filter chains can match server_names (TLS passthrough by SNI).

export type ClientHelloResult =
  | { kind: 'incomplete' }
  | { kind: 'not-tls' }
  | { kind: 'tls'; serverName?: string; alpn: string[] };

/** Largest ClientHello record the inspector waits for (Envoy's default max is 16 KiB too). */
export const MAX_CLIENT_HELLO = 16 * 1024;

export function parseClientHello(data: Buffer): ClientHelloResult {
  if (data.length === 0) return { kind: 'incomplete' };
  if (data[0] !== 0x16) return { kind: 'not-tls' }; // handshake record
  if (data.length < 5) return { kind: 'incomplete' };
  if (data[1] !== 0x03) return { kind: 'not-tls' };
  const recordLength = data.readUInt16BE(3);
  if (data.length < 5 + recordLength) return data.length >= MAX_CLIENT_HELLO ? { kind: 'not-tls' } : { kind: 'incomplete' };
  const hello = data.subarray(5, 5 + recordLength);
  try {
    return { kind: 'tls', ...readHello(hello) };
  } catch {
    return { kind: 'not-tls' };
  }
}

function readHello(h: Buffer): { serverName?: string; alpn: string[] } {
  if (h[0] !== 0x01) throw new Error('not a ClientHello');
  let p = 4; // type + 3-byte length
  p += 2 + 32; // client_version, random
  p += 1 + h[p]; // session_id
  p += 2 + h.readUInt16BE(p); // cipher_suites
  p += 1 + h[p]; // compression_methods
  const alpn: string[] = [];
  let serverName: string | undefined;
  if (p + 2 > h.length) return { alpn };
  const end = p + 2 + h.readUInt16BE(p);
  p += 2;
  while (p + 4 <= end && p + 4 <= h.length) {
    const type = h.readUInt16BE(p);
    const len = h.readUInt16BE(p + 2);
    const body = h.subarray(p + 4, p + 4 + len);
    p += 4 + len;
    if (type === 0x0000 && body.length >= 5) {
      // server_name_list: [type(1)=host_name, len(2), name]
      let q = 2;
      while (q + 3 <= body.length) {
        const nameType = body[q];
        const nameLen = body.readUInt16BE(q + 1);
        if (nameType === 0) {
          serverName = body.subarray(q + 3, q + 3 + nameLen).toString('latin1').toLowerCase();
          break;
        }
        q += 3 + nameLen;
      }
    } else if (type === 0x0010 && body.length >= 2) {
      let q = 2;
      while (q < body.length) {
        const l = body[q];
        alpn.push(body.subarray(q + 1, q + 1 + l).toString('latin1'));
        q += 1 + l;
      }
    }
  }
  return { serverName, alpn };
}

/** Envoy's server_names matching: exact, else the longest `*.suffix` wildcard. Returns a score. */
export function serverNameScore(patterns: readonly string[], name: string | undefined): number {
  if (patterns.length === 0) return 0;
  if (!name) return -1;
  let best = -1;
  for (const p of patterns) {
    const pattern = p.toLowerCase();
    if (pattern === name) return 100_000;
    if (pattern.startsWith('*.') && name.endsWith(pattern.slice(1)) && name.length > pattern.length - 1) best = Math.max(best, pattern.length);
  }
  return best;
}
