// A real OTLP/HTTP trace receiver for tests: a node:http server on loopback that accepts
// POST /v1/traces with a protobuf (application/x-protobuf) or JSON body, decodes
// ExportTraceServiceRequest by opentelemetry-proto's field numbers, and keeps the spans.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Reader } from 'protobufjs';

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  /** '' for a root span. */
  parentSpanId: string;
  traceState: string;
  name: string;
  /** OTLP SpanKind: 2 SERVER, 3 CLIENT. */
  kind: number;
  startTimeUnixNano: bigint;
  endTimeUnixNano: bigint;
  attributes: Record<string, string | number | boolean>;
  /** OTLP status code: 0 unset, 1 ok, 2 error. */
  statusCode: number;
  /** The `service.name` resource attribute of the batch it came in. */
  serviceName: string;
}

export interface OtlpReceiver {
  port: number;
  /** `http://127.0.0.1:<port>` */
  url: string;
  spans: ReceivedSpan[];
  /** Export requests received, with their content type. */
  requests: { contentType: string; bytes: number }[];
  /** Answer every export with this status (default 200). */
  respondWith(status: number): void;
  close(): Promise<void>;
}

const SPAN_KIND: Record<string, number> = { SPAN_KIND_INTERNAL: 1, SPAN_KIND_SERVER: 2, SPAN_KIND_CLIENT: 3, SPAN_KIND_PRODUCER: 4, SPAN_KIND_CONSUMER: 5 };

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

type AnyValue = string | number | boolean;

function decodeAnyValue(bytes: Uint8Array): AnyValue {
  const r = Reader.create(bytes);
  let value: AnyValue = '';
  while (r.pos < r.len) {
    const tag = r.uint32();
    switch (tag >>> 3) {
      case 1:
        value = r.string();
        break;
      case 2:
        value = r.bool();
        break;
      case 3:
        value = Number(r.int64().toString());
        break;
      case 4:
        value = r.double();
        break;
      default:
        r.skipType(tag & 7);
    }
  }
  return value;
}

function decodeKeyValue(bytes: Uint8Array): [string, AnyValue] {
  const r = Reader.create(bytes);
  let key = '';
  let value: AnyValue = '';
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag >>> 3 === 1) key = r.string();
    else if (tag >>> 3 === 2) value = decodeAnyValue(r.bytes());
    else r.skipType(tag & 7);
  }
  return [key, value];
}

function fixed64(r: Reader): bigint {
  const lo = BigInt(r.fixed32());
  const hi = BigInt(r.fixed32());
  return (hi << 32n) | lo;
}

function decodeSpan(bytes: Uint8Array, serviceName: string): ReceivedSpan {
  const r = Reader.create(bytes);
  const span: ReceivedSpan = {
    traceId: '',
    spanId: '',
    parentSpanId: '',
    traceState: '',
    name: '',
    kind: 0,
    startTimeUnixNano: 0n,
    endTimeUnixNano: 0n,
    attributes: {},
    statusCode: 0,
    serviceName,
  };
  while (r.pos < r.len) {
    const tag = r.uint32();
    switch (tag >>> 3) {
      case 1:
        span.traceId = hex(r.bytes());
        break;
      case 2:
        span.spanId = hex(r.bytes());
        break;
      case 3:
        span.traceState = r.string();
        break;
      case 4:
        span.parentSpanId = hex(r.bytes());
        break;
      case 5:
        span.name = r.string();
        break;
      case 6:
        span.kind = r.int32();
        break;
      case 7:
        span.startTimeUnixNano = fixed64(r);
        break;
      case 8:
        span.endTimeUnixNano = fixed64(r);
        break;
      case 9: {
        const [k, v] = decodeKeyValue(r.bytes());
        span.attributes[k] = v;
        break;
      }
      case 15: {
        const s = Reader.create(r.bytes());
        while (s.pos < s.len) {
          const t = s.uint32();
          if (t >>> 3 === 3) span.statusCode = s.int32();
          else s.skipType(t & 7);
        }
        break;
      }
      default:
        r.skipType(tag & 7);
    }
  }
  return span;
}

function decodeResourceServiceName(bytes: Uint8Array): string {
  const r = Reader.create(bytes);
  let name = '';
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag >>> 3 === 1) {
      const [k, v] = decodeKeyValue(r.bytes());
      if (k === 'service.name') name = String(v);
    } else r.skipType(tag & 7);
  }
  return name;
}

/** ExportTraceServiceRequest (protobuf) -> spans. */
export function decodeExportRequest(body: Uint8Array): ReceivedSpan[] {
  const spans: ReceivedSpan[] = [];
  const top = Reader.create(body);
  while (top.pos < top.len) {
    const tag = top.uint32();
    if (tag >>> 3 !== 1) {
      top.skipType(tag & 7);
      continue;
    }
    const rs = Reader.create(top.bytes());
    let serviceName = '';
    const scopeSpans: Uint8Array[] = [];
    while (rs.pos < rs.len) {
      const t = rs.uint32();
      if (t >>> 3 === 1) serviceName = decodeResourceServiceName(rs.bytes());
      else if (t >>> 3 === 2) scopeSpans.push(rs.bytes());
      else rs.skipType(t & 7);
    }
    for (const ss of scopeSpans) {
      const r = Reader.create(ss);
      while (r.pos < r.len) {
        const t = r.uint32();
        if (t >>> 3 === 2) spans.push(decodeSpan(r.bytes(), serviceName));
        else r.skipType(t & 7);
      }
    }
  }
  return spans;
}

interface JsonKeyValue {
  key: string;
  value: { stringValue?: string; boolValue?: boolean; intValue?: string | number; doubleValue?: number };
}

/** The OTLP/JSON encoding of the same request (ids as hex, enums as numbers or names). */
function decodeJsonRequest(text: string): ReceivedSpan[] {
  const body = JSON.parse(text) as { resourceSpans?: { resource?: { attributes?: JsonKeyValue[] }; scopeSpans?: { spans?: Record<string, unknown>[] }[] }[] };
  const attrs = (list: JsonKeyValue[] | undefined) =>
    Object.fromEntries((list ?? []).map((kv) => [kv.key, kv.value.stringValue ?? kv.value.boolValue ?? Number(kv.value.intValue ?? kv.value.doubleValue)]));
  const spans: ReceivedSpan[] = [];
  for (const rs of body.resourceSpans ?? []) {
    const serviceName = String(attrs(rs.resource?.attributes)['service.name'] ?? '');
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        spans.push({
          traceId: String(s.traceId ?? ''),
          spanId: String(s.spanId ?? ''),
          parentSpanId: String(s.parentSpanId ?? ''),
          traceState: String(s.traceState ?? ''),
          name: String(s.name ?? ''),
          kind: typeof s.kind === 'number' ? s.kind : (SPAN_KIND[String(s.kind)] ?? 0),
          startTimeUnixNano: BigInt(String(s.startTimeUnixNano ?? 0)),
          endTimeUnixNano: BigInt(String(s.endTimeUnixNano ?? 0)),
          attributes: attrs(s.attributes as JsonKeyValue[]),
          statusCode: Number((s.status as { code?: number } | undefined)?.code ?? 0),
          serviceName,
        });
      }
    }
  }
  return spans;
}

export async function startOtlpReceiver(address = '127.0.0.1', port = 0): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const requests: OtlpReceiver['requests'] = [];
  let status = 200;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const contentType = String(req.headers['content-type'] ?? '');
      requests.push({ contentType, bytes: body.length });
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        res.writeHead(404).end();
        return;
      }
      if (status >= 200 && status < 300) {
        spans.push(...(contentType.includes('json') ? decodeJsonRequest(body.toString()) : decodeExportRequest(body)));
      }
      res.writeHead(status, { 'content-type': contentType.includes('json') ? 'application/json' : 'application/x-protobuf' });
      res.end(contentType.includes('json') ? '{}' : undefined);
    });
  });
  await new Promise<void>((resolve) => server.listen(port, address, resolve));
  const bound = (server.address() as AddressInfo).port;
  return {
    port: bound,
    url: `http://${address}:${bound}`,
    spans,
    requests,
    respondWith: (s) => (status = s),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
