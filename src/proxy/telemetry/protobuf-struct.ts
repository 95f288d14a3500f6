// google.protobuf.Struct (and Any) in protobuf binary form, written by hand for the two places the
// proxy needs it: Istio's peer metadata header and TCP metadata exchange preamble carry the
// peer's node metadata as a serialized Struct. Hand-written because the messages are tiny, the
// encoding of our own metadata happens once, and decoding untrusted peer bytes must be bounded
// (depth, size) and must not touch object prototypes.

/** A protobuf Value as plain data: a Struct is a null-prototype object, a ListValue an array. */
export type ProtoValue = null | number | string | boolean | ProtoStruct | ProtoValue[];
export interface ProtoStruct {
  [key: string]: ProtoValue;
}

export const STRUCT_TYPE_URL = 'type.googleapis.com/google.protobuf.Struct';

/** Nesting beyond this is refused: peer metadata is two levels deep. */
const MAX_DEPTH = 16;

// ---------------------------------------------------------------------------------------------
// Encoding

class Writer {
  private readonly parts: Buffer[] = [];
  length = 0;

  bytes(b: Buffer): void {
    this.parts.push(b);
    this.length += b.length;
  }

  varint(n: number): void {
    const out: number[] = [];
    let v = n;
    while (v > 0x7f) {
      out.push((v & 0x7f) | 0x80);
      v = Math.floor(v / 128);
    }
    out.push(v);
    this.bytes(Buffer.from(out));
  }

  /** A length-delimited field. */
  field(fieldNumber: number, payload: Buffer): void {
    this.varint((fieldNumber << 3) | 2);
    this.varint(payload.length);
    this.bytes(payload);
  }

  finish(): Buffer {
    return Buffer.concat(this.parts, this.length);
  }
}

function encodeValue(v: ProtoValue): Buffer {
  const w = new Writer();
  if (v === null) {
    w.varint((1 << 3) | 0);
    w.varint(0);
  } else if (typeof v === 'number') {
    w.varint((2 << 3) | 1);
    const b = Buffer.alloc(8);
    b.writeDoubleLE(v);
    w.bytes(b);
  } else if (typeof v === 'string') {
    w.field(3, Buffer.from(v, 'utf8'));
  } else if (typeof v === 'boolean') {
    w.varint((4 << 3) | 0);
    w.varint(v ? 1 : 0);
  } else if (Array.isArray(v)) {
    const list = new Writer();
    for (const item of v) list.field(1, encodeValue(item));
    w.field(6, list.finish());
  } else {
    w.field(5, encodeStruct(v));
  }
  return w.finish();
}

/** Serializes a Struct with its map entries sorted by key (protobuf's deterministic mode, as Istio writes it). */
export function encodeStruct(s: ProtoStruct): Buffer {
  const w = new Writer();
  for (const key of Object.keys(s).sort()) {
    const entry = new Writer();
    entry.field(1, Buffer.from(key, 'utf8'));
    entry.field(2, encodeValue(s[key]));
    w.field(1, entry.finish());
  }
  return w.finish();
}

/** google.protobuf.Any packing `value` under `typeUrl`. */
export function encodeAny(typeUrl: string, value: Buffer): Buffer {
  const w = new Writer();
  w.field(1, Buffer.from(typeUrl, 'utf8'));
  w.field(2, value);
  return w.finish();
}

// ---------------------------------------------------------------------------------------------
// Decoding

export class ProtoDecodeError extends Error {
  readonly code = 'WEFT_PROTO_DECODE';
}

class Reader {
  pos: number;
  constructor(
    private readonly buf: Buffer,
    start = 0,
    readonly end = buf.length,
  ) {
    this.pos = start;
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  varint(): number {
    let result = 0;
    let factor = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new ProtoDecodeError('truncated varint');
      const byte = this.buf[this.pos++];
      result += (byte & 0x7f) * factor;
      if ((byte & 0x80) === 0) return result;
      factor *= 128;
    }
    throw new ProtoDecodeError('varint too long');
  }

  /** The bounds of a length-delimited payload; the reader moves past it. */
  delimited(): [number, number] {
    const len = this.varint();
    const start = this.pos;
    if (start + len > this.end) throw new ProtoDecodeError('length past the end of the message');
    this.pos = start + len;
    return [start, start + len];
  }

  skip(wireType: number): void {
    switch (wireType) {
      case 0:
        this.varint();
        return;
      case 1:
        this.advance(8);
        return;
      case 2:
        this.delimited();
        return;
      case 5:
        this.advance(4);
        return;
      default:
        throw new ProtoDecodeError(`unsupported wire type ${wireType}`);
    }
  }

  private advance(n: number): void {
    if (this.pos + n > this.end) throw new ProtoDecodeError('truncated field');
    this.pos += n;
  }

  sub([start, end]: [number, number]): Reader {
    return new Reader(this.buf, start, end);
  }

  text([start, end]: [number, number]): string {
    return this.buf.toString('utf8', start, end);
  }

  double(): number {
    if (this.pos + 8 > this.end) throw new ProtoDecodeError('truncated double');
    const v = this.buf.readDoubleLE(this.pos);
    this.pos += 8;
    return v;
  }

  slice([start, end]: [number, number]): Buffer {
    return this.buf.subarray(start, end);
  }
}

function decodeValue(r: Reader, depth: number): ProtoValue {
  if (depth > MAX_DEPTH) throw new ProtoDecodeError('nested too deep');
  let value: ProtoValue = null;
  while (!r.done) {
    const tag = r.varint();
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (field === 1 && wire === 0) {
      r.varint();
      value = null;
    } else if (field === 2 && wire === 1) value = r.double();
    else if (field === 3 && wire === 2) value = r.text(r.delimited());
    else if (field === 4 && wire === 0) value = r.varint() !== 0;
    else if (field === 5 && wire === 2) value = decodeStructFrom(r.sub(r.delimited()), depth + 1);
    else if (field === 6 && wire === 2) {
      const list = r.sub(r.delimited());
      const items: ProtoValue[] = [];
      while (!list.done) {
        const t = list.varint();
        if (t === ((1 << 3) | 2)) items.push(decodeValue(list.sub(list.delimited()), depth + 1));
        else list.skip(t & 7);
      }
      value = items;
    } else r.skip(wire);
  }
  return value;
}

function decodeStructFrom(r: Reader, depth: number): ProtoStruct {
  if (depth > MAX_DEPTH) throw new ProtoDecodeError('nested too deep');
  const out = Object.create(null) as ProtoStruct;
  while (!r.done) {
    const tag = r.varint();
    if (tag !== ((1 << 3) | 2)) {
      r.skip(tag & 7);
      continue;
    }
    const entry = r.sub(r.delimited());
    let key = '';
    let value: ProtoValue = null;
    while (!entry.done) {
      const t = entry.varint();
      if (t === ((1 << 3) | 2)) key = entry.text(entry.delimited());
      else if (t === ((2 << 3) | 2)) value = decodeValue(entry.sub(entry.delimited()), depth + 1);
      else entry.skip(t & 7);
    }
    out[key] = value;
  }
  return out;
}

/** Parses a serialized Struct. Throws ProtoDecodeError on malformed input. */
export function decodeStruct(buf: Buffer): ProtoStruct {
  return decodeStructFrom(new Reader(buf), 0);
}

/** Parses a serialized Any into its type URL and value bytes. */
export function decodeAny(buf: Buffer): { typeUrl: string; value: Buffer } {
  const r = new Reader(buf);
  let typeUrl = '';
  let value: Buffer = Buffer.alloc(0);
  while (!r.done) {
    const tag = r.varint();
    if (tag === ((1 << 3) | 2)) typeUrl = r.text(r.delimited());
    else if (tag === ((2 << 3) | 2)) value = r.slice(r.delimited());
    else r.skip(tag & 7);
  }
  return { typeUrl, value };
}
