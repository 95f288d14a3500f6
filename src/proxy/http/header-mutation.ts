// Applies compiled header edits to a request header map or a response header list.
import type { HeaderEdits, RequestView } from '../config/model';

type HeaderMap = Record<string, string | string[] | undefined>;

export function applyRequestEdits(headers: HeaderMap, edits: HeaderEdits, req: RequestView): void {
  for (const name of edits.remove) headers[name] = undefined;
  for (const a of edits.add) {
    const value = typeof a.value === 'string' ? a.value : a.value(req);
    if (value === '' && !a.keepEmptyValue) continue;
    const existing = headers[a.key];
    switch (a.action) {
      case 'append':
        if (existing === undefined) headers[a.key] = value;
        else if (Array.isArray(existing)) existing.push(value);
        else headers[a.key] = [existing, value];
        break;
      case 'overwrite-or-add':
        headers[a.key] = value;
        break;
      case 'add-if-absent':
        if (existing === undefined) headers[a.key] = value;
        break;
      case 'overwrite-if-exists':
        if (existing !== undefined) headers[a.key] = value;
        break;
    }
  }
}

/** Edits a flat `[name, value, ...]` list (lower-case names) and returns it (maybe a new array). */
export function applyResponseEdits(list: string[], edits: HeaderEdits, req: RequestView): string[] {
  let out = list;
  if (edits.remove.length) {
    out = [];
    for (let i = 0; i < list.length; i += 2) if (!edits.remove.includes(list[i])) out.push(list[i], list[i + 1]);
  }
  for (const a of edits.add) {
    const value = typeof a.value === 'string' ? a.value : a.value(req);
    if (value === '' && !a.keepEmptyValue) continue;
    const present = indexOfHeader(out, a.key) >= 0;
    switch (a.action) {
      case 'append':
        out.push(a.key, value);
        break;
      case 'add-if-absent':
        if (!present) out.push(a.key, value);
        break;
      case 'overwrite-if-exists':
        if (present) out = setHeader(out, a.key, value);
        break;
      case 'overwrite-or-add':
        out = setHeader(out, a.key, value);
        break;
    }
  }
  return out;
}

export function indexOfHeader(list: readonly string[], name: string): number {
  for (let i = 0; i < list.length; i += 2) if (list[i] === name) return i;
  return -1;
}

/** Replaces every `name` entry with one `name: value` (in place when there is at most one). */
export function setHeader(list: string[], name: string, value: string): string[] {
  let first = -1;
  let count = 0;
  for (let i = 0; i < list.length; i += 2) {
    if (list[i] === name) {
      if (first < 0) first = i;
      count++;
    }
  }
  if (count === 0) {
    list.push(name, value);
    return list;
  }
  if (count === 1) {
    list[first + 1] = value;
    return list;
  }
  const out: string[] = [];
  for (let i = 0; i < list.length; i += 2) if (list[i] !== name) out.push(list[i], list[i + 1]);
  out.push(name, value);
  return out;
}

export function getHeader(list: readonly string[], name: string): string | undefined {
  const i = indexOfHeader(list, name);
  return i >= 0 ? list[i + 1] : undefined;
}
