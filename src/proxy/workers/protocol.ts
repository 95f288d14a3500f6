// The messages between a multi-process proxy's primary and its workers (node:cluster IPC, JSON).
// The primary owns the control-plane side and sends each worker what it needs to serve: its
// options, the SDS secrets, and every accepted xDS resource set; workers answer with what applying
// it found (bind errors), their readiness and, on request, their stats rendered as text.
import type { LogLevel } from '../../log/logger';
import type { TypeUrl } from '../../xds/protos';
import type { ReceivedResource } from '../xds-client';

/** What of ProxyOptions a worker needs (everything serializable; config and secrets come later). */
export interface WorkerProxyOptions {
  node: { id: string; cluster?: string; metadata?: Record<string, unknown> };
  bindAddress: string;
  ports: { outbound: number; inbound: number };
  listenerPorts?: Record<number, number>;
  telemetry?: boolean;
  initialFetchTimeoutMs?: number;
  listenerDrainMs?: number;
  /** Whether the primary has an identity (then the worker serves SDS `default`/`ROOTCA` from what it is sent). */
  secrets: boolean;
  logLevel: LogLevel;
}

/** The views a worker renders for the primary's admin endpoints. */
export type WorkerView = 'stats' | 'prometheus' | 'clusters' | 'clusters-json';

export interface BoundListener {
  name: string;
  address: string;
  port: number;
}

export type ToWorker =
  | { kind: 'start'; index: number; options: WorkerProxyOptions }
  | { kind: 'secret'; name: string; certChainPem: string; privateKeyPem: string }
  | { kind: 'trusted-ca'; name: string; trustedCaPem: string }
  | { kind: 'config'; seq: number; type: TypeUrl; version: string; resources: ReceivedResource[] }
  | { kind: 'render'; seq: number; view: WorkerView }
  | { kind: 'drain-listeners' }
  | { kind: 'shutdown'; graceMs: number };

export type FromWorker =
  | { kind: 'ready'; listeners: BoundListener[] }
  | { kind: 'applied'; seq: number; errors: string[]; listeners: BoundListener[] }
  | { kind: 'rendered'; seq: number; body: string }
  | { kind: 'failed'; error: string };
