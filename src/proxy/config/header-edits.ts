// Header additions and removals (envoy.config.core.v3.HeaderValueOption lists), compiled with
// their value formatters so the request path only substitutes.
import * as os from 'node:os';
import type { HeaderAddition, HeaderEdits, RequestView } from './model';
import { NO_HEADER_EDITS } from './model';
import { join, type Json, type Problems } from './validation';

const APPEND_ACTIONS: Record<string, HeaderAddition['action']> = {
  APPEND_IF_EXISTS_OR_ADD: 'append',
  ADD_IF_ABSENT: 'add-if-absent',
  OVERWRITE_IF_EXISTS_OR_ADD: 'overwrite-or-add',
  OVERWRITE_IF_EXISTS: 'overwrite-if-exists',
};

const FORBIDDEN_EDIT = /^(:|host$)/;

type Piece = string | ((req: RequestView) => string);

function remoteWithoutPort(req: RequestView): string {
  return req.remoteAddress;
}

/**
 * Compiles Envoy's header value formatting: `%DOWNSTREAM_REMOTE_ADDRESS%`, `%REQ(name)%`,
 * `%HOSTNAME%`, ... and `%%` for a literal percent. Unknown operators are refused.
 */
export function compileHeaderValue(
  text: string,
  problems: Problems,
  path: string,
): string | ((req: RequestView) => string) {
  if (!text.includes('%')) return text;
  const pieces: Piece[] = [];
  const re = /%%|%([A-Z_]+)(?:\(([^)]*)\))?%/g;
  let last = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    if (m.index > last) pieces.push(text.slice(last, m.index));
    last = re.lastIndex;
    if (m[0] === '%%') {
      pieces.push('%');
      continue;
    }
    const op = m[1];
    const arg = m[2];
    switch (op) {
      case 'DOWNSTREAM_REMOTE_ADDRESS':
      case 'DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT':
      case 'DOWNSTREAM_DIRECT_REMOTE_ADDRESS':
      case 'DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT':
        pieces.push(remoteWithoutPort);
        break;
      case 'HOSTNAME': {
        const host = os.hostname();
        pieces.push(host);
        break;
      }
      case 'PROTOCOL':
        pieces.push(() => 'HTTP/1.1');
        break;
      case 'REQ': {
        const name = String(arg ?? '').toLowerCase();
        if (!name) problems.add(path, `%REQ()% needs a header name in "${text}"`);
        pieces.push((req) => req.header(name) ?? '');
        break;
      }
      case 'START_TIME':
        pieces.push(() => new Date().toISOString());
        break;
      // The verified client certificate of a TLS connection (empty for plaintext).
      case 'DOWNSTREAM_PEER_URI_SAN':
        pieces.push((req) => req.tls?.peerUriSans.join(',') ?? '');
        break;
      case 'DOWNSTREAM_TLS_VERSION':
        pieces.push((req) => req.tls?.version ?? '');
        break;
      default:
        problems.add(path, `header value formatter %${op}% is not supported by the Weft proxy`);
    }
  }
  if (last < text.length) pieces.push(text.slice(last));
  if (pieces.every((p) => typeof p === 'string')) return pieces.join('');
  return (req) => {
    let out = '';
    for (const p of pieces) out += typeof p === 'string' ? p : p(req);
    return out;
  };
}

/** Compiles `*_headers_to_add` and `*_headers_to_remove` of one config level. */
export function compileHeaderEdits(
  add: Json[] | undefined,
  remove: string[] | undefined,
  problems: Problems,
  path: string,
  addField: string,
  removeField: string,
): HeaderEdits {
  if ((!add || add.length === 0) && (!remove || remove.length === 0)) return NO_HEADER_EDITS;
  const additions: HeaderAddition[] = [];
  (add ?? []).forEach((option, i) => {
    const p = join(join(path, addField), i);
    problems.fields(option, p, ['header', 'append', 'append_action', 'keep_empty_value']);
    const header = option.header ?? {};
    problems.fields(header, join(p, 'header'), ['key', 'value', 'raw_value']);
    const key = String(header.key ?? '').toLowerCase();
    if (!key) problems.add(join(p, 'header.key'), 'header key is required');
    if (key.startsWith(':')) problems.add(join(p, 'header.key'), `pseudo-header "${key}" cannot be added`);
    let rawValue: string = header.value ?? '';
    if (header.raw_value !== undefined) rawValue = Buffer.from(header.raw_value, 'base64').toString('latin1');
    let action: HeaderAddition['action'] = 'append';
    if (option.append_action) {
      const a = APPEND_ACTIONS[option.append_action];
      if (!a) problems.add(join(p, 'append_action'), `unknown append_action "${option.append_action}"`);
      else action = a;
    } else if (option.append === false) {
      action = 'overwrite-or-add';
    }
    additions.push({
      key,
      value: compileHeaderValue(rawValue, problems, join(p, 'header.value')),
      action,
      keepEmptyValue: option.keep_empty_value === true,
    });
  });
  const removals: string[] = [];
  (remove ?? []).forEach((name, i) => {
    const lower = String(name).toLowerCase();
    if (FORBIDDEN_EDIT.test(lower)) problems.add(join(join(path, removeField), i), `header "${name}" cannot be removed`);
    else removals.push(lower);
  });
  return Object.freeze({ add: additions, remove: removals });
}

/** Request- and response-side edits of one level (route config, virtual host, route, cluster). */
export function compileRequestResponseEdits(
  obj: Json,
  problems: Problems,
  path: string,
): { requestHeaders: HeaderEdits; responseHeaders: HeaderEdits } {
  return {
    requestHeaders: compileHeaderEdits(
      obj.request_headers_to_add,
      obj.request_headers_to_remove,
      problems,
      path,
      'request_headers_to_add',
      'request_headers_to_remove',
    ),
    responseHeaders: compileHeaderEdits(
      obj.response_headers_to_add,
      obj.response_headers_to_remove,
      problems,
      path,
      'response_headers_to_add',
      'response_headers_to_remove',
    ),
  };
}
