// Loads the SO_ORIGINAL_DST addon (native/original_dst.cc, built at install by
// scripts/build-native.js) and turns it into the proxy's `originalDestination(socket)` hook.
// Capture without it cannot route anything, so a missing or broken addon is an error with the
// build's own reason and a hint — never a silent fallback to the local address.
import * as fs from 'node:fs';
import type * as net from 'node:net';
import * as path from 'node:path';
import type { Destination } from '../proxy/listener/listener-server';

const NATIVE_DIR = path.resolve(__dirname, '..', '..', '..', 'native');
export const ADDON_PATH = path.join(NATIVE_DIR, 'build', 'Release', 'original_dst.node');
const BUILD_ERROR_PATH = path.join(NATIVE_DIR, 'build-error.txt');

interface OriginalDstAddon {
  originalDestination(fd: number): { address: string; port: number } | null;
}

export class CaptureUnavailableError extends Error {
  readonly code = 'ERR_WEFT_CAPTURE_UNAVAILABLE';
}

let loaded: OriginalDstAddon | undefined;

/** The addon, or a CaptureUnavailableError saying why it is not there and how to build it. */
export function loadOriginalDstAddon(addonPath = ADDON_PATH): OriginalDstAddon {
  if (loaded && addonPath === ADDON_PATH) return loaded;
  if (process.platform !== 'linux') throw new CaptureUnavailableError(`transparent capture needs Linux (SO_ORIGINAL_DST); this is ${process.platform}`);
  if (!fs.existsSync(addonPath)) {
    const reason = fs.existsSync(BUILD_ERROR_PATH) ? fs.readFileSync(BUILD_ERROR_PATH, 'utf8').trim().split('\n').slice(-3).join(' | ') : 'it was never built';
    throw new CaptureUnavailableError(
      `the SO_ORIGINAL_DST addon ${addonPath} is missing: ${reason} (hint: install g++, make and python3, then \`npm run build:native\`)`,
    );
  }
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const addon = require(addonPath) as OriginalDstAddon;
    if (typeof addon.originalDestination !== 'function') throw new Error('it exports no originalDestination()');
    if (addonPath === ADDON_PATH) loaded = addon;
    return addon;
  } catch (err) {
    if (err instanceof CaptureUnavailableError) throw err;
    throw new CaptureUnavailableError(`cannot load the SO_ORIGINAL_DST addon ${addonPath}: ${(err as Error).message} (hint: \`npm run build:native\` rebuilds it for this Node)`);
  }
}

/** The file descriptor of a connected net.Socket (libuv's handle), when it has one. */
function socketFd(socket: net.Socket): number | undefined {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/**
 * The proxy's hook: the destination a captured connection had before REDIRECT, or undefined
 * for a connection that was not redirected (the listener then uses the local address, as Envoy's
 * original_dst filter does). Errors other than "not redirected" are logged by the caller.
 */
export function originalDestinationHook(onError?: (err: Error) => void, addon = loadOriginalDstAddon()): (socket: net.Socket) => Destination | undefined {
  return (socket) => {
    const fd = socketFd(socket);
    if (fd === undefined) return undefined;
    try {
      const dst = addon.originalDestination(fd);
      return dst ? { ip: dst.address, port: dst.port } : undefined;
    } catch (err) {
      onError?.(err as Error);
      return undefined;
    }
  };
}
