// Who this process is: the service it runs, where it listens and how it names itself, read once
// from the environment (the same knobs Istio's Bookinfo containers take, plus what a plain machine
// needs in place of a Kubernetes pod).
import { createHash, randomInt } from 'node:crypto';

export const SERVICES = ['productpage', 'details', 'reviews', 'ratings', 'httpbin'] as const;
export type ServiceName = (typeof SERVICES)[number];

export interface WorkloadConfig {
  readonly service: ServiceName;
  /** SERVICE_VERSION: v1 | v2 | v3 (reviews: stars and colour; ratings: v-faulty, v-delayed). */
  readonly version: string;
  /** WORKLOAD_NAME, e.g. `reviews-v2`; defaults to `<service>-<version>` (`httpbin` for httpbin). */
  readonly workloadName: string;
  /** What Kubernetes would call the pod: `reviews-v2-7d8f9c6b5-x2x9k`; POD_NAME overrides. */
  readonly podName: string;
  /** CLUSTER_NAME, reported by reviews as Istio's does (the string "null" when unset). */
  readonly clusterName: string;
  readonly bindAddress: string;
  /** 0 asks the OS for a free port; the started log line carries the real one. */
  readonly port: number;
  /** HTTP_PROXY: the sidecar reached as a forward proxy; every outgoing call goes through it. */
  readonly httpProxy: string | undefined;
}

export class WorkloadConfigError extends Error {
  readonly code = 'BOOKINFO_BAD_CONFIG';
}

export function isServiceName(value: string | undefined): value is ServiceName {
  return (SERVICES as readonly string[]).includes(value ?? '');
}

/** Reads the configuration of `service` from `env`; throws WorkloadConfigError naming the variable. */
export function loadWorkloadConfig(service: ServiceName, env: NodeJS.ProcessEnv = process.env): WorkloadConfig {
  const version = env.SERVICE_VERSION || 'v1';
  const workloadName = env.WORKLOAD_NAME || (service === 'httpbin' ? 'httpbin' : `${service}-${version}`);
  const port = parsePort(env.PORT, service === 'httpbin' ? 8000 : 9080);
  const httpProxy = env.HTTP_PROXY || env.http_proxy || undefined;
  if (httpProxy !== undefined) {
    let url: URL;
    try {
      url = new URL(httpProxy);
    } catch {
      throw new WorkloadConfigError(`HTTP_PROXY=${httpProxy} is not a URL (hint: http://127.0.10.3:15001)`);
    }
    if (url.protocol !== 'http:') throw new WorkloadConfigError(`HTTP_PROXY=${httpProxy}: only http:// proxies are supported`);
  }
  return {
    service,
    version,
    workloadName,
    podName: env.POD_NAME || podNameFor(workloadName),
    clusterName: env.CLUSTER_NAME || 'null',
    bindAddress: env.BIND_ADDRESS || '127.0.0.1',
    port,
    httpProxy,
  };
}

function parsePort(raw: string | undefined, fallback: number): number {
  if (raw === undefined || raw === '') return fallback;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new WorkloadConfigError(`PORT=${raw} is not a port number (0-65535)`);
  }
  return port;
}

// Kubernetes' name alphabet (k8s.io/apimachinery rand.String): no vowels, no easily confused digits.
const POD_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

/**
 * A Deployment-style pod name: `<workload>-<template hash>-<random>`. The hash part depends only on
 * the workload name (stable across restarts, as a pod-template-hash is); the last five characters
 * are new for every process, as a new pod's are.
 */
export function podNameFor(workloadName: string, random: (max: number) => number = randomInt): string {
  const digest = createHash('sha256').update(workloadName).digest();
  let templateHash = '';
  for (let i = 0; i < 9; i++) templateHash += POD_ALPHABET[digest[i]! % POD_ALPHABET.length];
  let suffix = '';
  for (let i = 0; i < 5; i++) suffix += POD_ALPHABET[random(POD_ALPHABET.length)];
  return `${workloadName}-${templateHash}-${suffix}`;
}
