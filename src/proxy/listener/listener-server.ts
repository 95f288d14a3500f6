// One bound listener: accepts connections, works out their destination, selects the filter
// chain and hands the connection to the HTTP connection manager (HTTP/1.1 or h2c, told apart
// by sniffing the first bytes) or to tcp_proxy. A chain with a DownstreamTlsContext terminates
// TLS first (tls-terminator.ts), chosen by the ClientHello's facts like Envoy's tls_inspector;
// HTTP then runs over the TLS socket (h2 by ALPN, else sniffed) and tcp_proxy pipes it.
//
// Destinations. A capture listener (original_dst listener filter or use_original_dst, like
// Istio's virtualOutbound/virtualInbound) selects chains by the connection's original
// destination and hands it to the bind_to_port=false listener owning that destination.
// `originalDestination` (SO_ORIGINAL_DST, issue 10) supplies it; without capture the original
// destination is the local address, exactly what Envoy's original_dst filter reports for a
// connection that was not redirected. HTTP_PROXY clients then land on the listener's HTTP chain
// (routed by Host / absolute URI), and a CONNECT request's target is the destination of its
// tunnel (TCP services through HTTP_PROXY).
import * as http2 from 'node:http2';
import * as net from 'node:net';
import type * as tls from 'node:tls';
import type { DownstreamTlsSettings } from '../config/downstream-tls';
import type { CompiledFilterChain, CompiledListener, CompiledRouteConfig, HttpConnectionManagerConfig } from '../config/model';
import { SecureContextCache } from '../identity/secure-contexts';
import { Http2Exchange, type Exchange } from '../http/exchange';
import { Http1ServerConnection, type Http1ConnectionOwner, type Http1Exchange } from '../http/http1-server';
import { HttpStream, splitHostPort, type HttpRuntime } from '../http/http-stream';
import { sendLocalReply } from '../http/local-reply';
import { proxyTcp } from '../tcp/tcp-proxy';
import { needsSniffing, selectFilterChain, type ConnectionFacts } from './filter-chain-match';
import { parseClientHello } from './tls-client-hello';
import { newDownstreamTlsStats, TlsTerminator, type DownstreamTlsStats } from './tls-terminator';

export interface Destination {
  ip?: string;
  port: number;
}

export interface ListenerDependencies {
  runtime: HttpRuntime;
  /** A listener with bind_to_port false owning this destination (Envoy's use_original_dst hand-off). */
  virtualListenerFor(dest: Destination): CompiledListener | undefined;
  /** Original destination of a captured connection, when the platform can tell. */
  originalDestination?(socket: net.Socket): Destination | undefined;
  /** Resolves the SDS secrets of TLS chains (the proxy's identity); absent: file certificates only. */
  secureContexts?: SecureContextCache;
}

interface ConnectionContext {
  dest: Destination;
  /** Set once the first bytes were inspected. */
  applicationProtocols?: string[];
  transportProtocol?: 'raw_buffer' | 'tls';
  serverName?: string;
  /** The HCM last selected for this connection, valid while the listener generation is the same. */
  hcm?: { listener: CompiledListener; hcm: HttpConnectionManagerConfig | undefined };
  /** The TLS chain whose handshake is in progress on this connection. */
  terminating?: { listener: CompiledListener; chain: CompiledFilterChain };
}

const kContext = Symbol('weft.connection');
type TaggedSocket = net.Socket & { [kContext]?: ConnectionContext };

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
const SNIFF_TIMEOUT_MS = 5_000;
const NO_SECRETS = new SecureContextCache(undefined);

/** Whether `chunk` starts like an HTTP/1.x request line. */
function looksLikeHttp1(chunk: Buffer): boolean {
  let i = 0;
  while (i < chunk.length && i < 16) {
    const c = chunk[i];
    if (c === 0x20) return i > 0;
    if ((c < 0x41 || c > 0x5a) && c !== 0x2d && c !== 0x5f) return false; // methods: upper-case tokens (M-SEARCH)
    i++;
  }
  return i === chunk.length; // too short to tell: a prefix of a method
}

export class ListenerServer {
  private readonly server: net.Server;
  private readonly h1Connections = new Set<Http1ServerConnection>();
  private readonly h1Owner: Http1ConnectionOwner;
  /** HCM idle_timeout: how long an HTTP/1.1 connection may sit between requests (60 s unless the config says). */
  private h1IdleTimeoutMs = 60_000;
  private readonly h2: http2.Http2Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private draining = false;
  /** Per listener generation: chain per destination (selection is pure given the config). */
  private readonly chainCache = new WeakMap<CompiledListener, Map<string, CompiledFilterChain | null>>();
  private readonly synthesized = new WeakMap<CompiledFilterChain, HttpConnectionManagerConfig>();
  /** One TLS server per chain's TLS settings (config generations that keep a chain keep its terminator). */
  private readonly terminators = new WeakMap<DownstreamTlsSettings, TlsTerminator>();
  /** Downstream TLS counters of this listener (Envoy's listener.<address>.ssl.*). */
  readonly tlsStats: DownstreamTlsStats = newDownstreamTlsStats();

  private current: CompiledListener;

  get config(): CompiledListener {
    return this.current;
  }

  /** A new listener generation: later requests (even on open connections) use it. */
  set config(next: CompiledListener) {
    this.current = next;
    this.applyIdleTimeout();
  }

  constructor(
    initial: CompiledListener,
    readonly bindAddress: string,
    readonly bindPort: number,
    private readonly deps: ListenerDependencies,
  ) {
    this.current = initial;
    this.server = net.createServer({ allowHalfOpen: true, noDelay: true }, (s) => this.onConnection(s));
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const server = this;
    this.h1Owner = {
      onRequest: (exchange, socket) => this.onHttp1Request(exchange, socket),
      onConnect: (target, socket, head) => this.onConnect(target, socket, head),
      get draining() {
        return server.draining;
      },
      get idleTimeoutMs() {
        return server.h1IdleTimeoutMs;
      },
    };
    this.applyIdleTimeout();
    this.h2 = http2.createServer({ maxSessionMemory: 64 });
    this.h2.on('session', (session) => {
      this.sessions.add(session);
      session.once('close', () => this.sessions.delete(session));
      if (this.draining) session.close();
    });
    this.h2.on('stream', (stream, headers, flags) => this.onHttp2Stream(stream, headers, flags));
  }

  /** HCM idle_timeout (Envoy default 1h): how long an HTTP/1.1 connection may sit between requests. */
  private applyIdleTimeout(): void {
    let idle = 0;
    for (const c of [...this.current.filterChains, ...(this.current.defaultFilterChain ? [this.current.defaultFilterChain] : [])]) {
      if (c.terminal.kind === 'http') idle = Math.max(idle, c.terminal.idleTimeoutMs);
    }
    if (idle > 0) this.h1IdleTimeoutMs = idle;
  }

  get port(): number {
    const a = this.server.address();
    return a && typeof a === 'object' ? a.port : this.bindPort;
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.server.once('error', onError);
      this.server.listen({ host: this.bindAddress, port: this.bindPort, backlog: 4096 }, () => {
        this.server.off('error', onError);
        this.server.on('error', () => undefined);
        resolve();
      });
    });
  }

  private isCapture(listener: CompiledListener): boolean {
    return listener.useOriginalDst || listener.inspectors.has('original-dst');
  }

  // ---- connections ----
  private onConnection(socket: net.Socket): void {
    if (this.draining) {
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    const listener = this.config;
    const local: Destination = { ip: socket.localAddress, port: socket.localPort ?? this.bindPort };
    const dest = (this.isCapture(listener) ? this.deps.originalDestination?.(socket) : undefined) ?? local;
    const ctx: ConnectionContext = { dest };
    (socket as TaggedSocket)[kContext] = ctx;
    if (needsSniffing(this.chainOwner(listener, dest), dest.port)) {
      this.sniff(socket, ctx, listener);
      return;
    }
    const chain = this.chainFor(listener, dest, socket, ctx);
    if (!chain) {
      socket.destroy();
      return;
    }
    if (chain.tls) this.terminateTls(socket, ctx, listener, chain);
    else if (chain.terminal.kind === 'tcp') proxyTcp(socket, chain.terminal, this.deps.runtime, { listenerName: listener.name, target: { host: dest.ip ?? '', port: dest.port } });
    else this.sniff(socket, ctx, listener);
  }

  /** Reads the first bytes to tell HTTP/2 (prior knowledge), HTTP/1.x and anything else apart. */
  private sniff(socket: net.Socket, ctx: ConnectionContext, listener: CompiledListener): void {
    let buffered: Buffer | null = null;
    const timer = setTimeout(() => decide(true), SNIFF_TIMEOUT_MS);
    const onData = (chunk: Buffer) => {
      buffered = buffered ? Buffer.concat([buffered, chunk]) : chunk;
      decide(false);
    };
    const decide = (timedOut: boolean) => {
      const data = buffered ?? Buffer.alloc(0);
      let kind: 'h2' | 'h1' | 'tls' | 'other';
      const n = Math.min(data.length, H2_PREFACE.length);
      if (data.length === 0) {
        if (!timedOut) return;
        kind = 'other';
      } else if (data[0] === 0x16) {
        // A TLS ClientHello (Envoy's tls_inspector): SNI and ALPN for chain matching.
        const hello = parseClientHello(data);
        if (hello.kind === 'incomplete' && !timedOut) return;
        if (hello.kind === 'tls') {
          kind = 'tls';
          ctx.transportProtocol = 'tls';
          ctx.serverName = hello.serverName;
          ctx.applicationProtocols = hello.alpn;
        } else kind = 'other';
      } else if (data.subarray(0, n).equals(H2_PREFACE.subarray(0, n))) {
        if (n < H2_PREFACE.length && !timedOut) return; // wait for the whole preface
        kind = n === H2_PREFACE.length ? 'h2' : 'other';
      } else if (looksLikeHttp1(data)) {
        if (data.indexOf(0x20) < 0 && !timedOut) return; // need the end of the method
        kind = 'h1';
      } else kind = 'other';
      clearTimeout(timer);
      socket.off('data', onData);
      socket.pause();
      socket.unshift(data);
      ctx.transportProtocol ??= 'raw_buffer';
      if (kind !== 'tls') ctx.applicationProtocols = kind === 'h2' ? ['h2c'] : kind === 'h1' ? ['http/1.1', 'http/1.0'] : [];
      this.dispatchSniffed(socket, ctx, listener, kind);
    };
    socket.on('data', onData);
    socket.once('close', () => clearTimeout(timer));
  }

  private dispatchSniffed(socket: net.Socket, ctx: ConnectionContext, listener: CompiledListener, kind: 'h2' | 'h1' | 'tls' | 'other'): void {
    const chain = this.chainFor(listener, ctx.dest, socket, ctx);
    if (!chain) {
      socket.destroy();
      return;
    }
    if (chain.tls) {
      // A plaintext client on a TLS-only chain fails, as Envoy's handshake would.
      if (kind === 'tls') this.terminateTls(socket, ctx, listener, chain);
      else socket.destroy();
      return;
    }
    if (chain.terminal.kind === 'tcp') {
      // The sniffed bytes are back in the socket's buffer; tcp_proxy reads them first once the
      // upstream is connected (it resumes the socket then).
      proxyTcp(socket, chain.terminal, this.deps.runtime, { listenerName: listener.name, target: { host: ctx.dest.ip ?? '', port: ctx.dest.port }, serverName: ctx.serverName });
      return;
    }
    if (kind === 'h2') {
      // Http2Session reads bytes already buffered in the socket itself; do not resume here.
      this.h2.emit('connection', socket);
    } else if (kind === 'h1') this.serveHttp1(socket);
    else socket.destroy();
  }

  // ---- TLS ----
  private terminatorFor(settings: DownstreamTlsSettings): TlsTerminator {
    let t = this.terminators.get(settings);
    if (!t) {
      t = new TlsTerminator(settings, this.deps.secureContexts ?? NO_SECRETS, this.tlsStats, (secure, raw) => this.onTlsEstablished(secure, raw));
      this.terminators.set(settings, t);
    }
    return t;
  }

  private terminateTls(socket: net.Socket, ctx: ConnectionContext, listener: CompiledListener, chain: CompiledFilterChain): void {
    ctx.terminating = { listener, chain };
    if (!this.terminatorFor(chain.tls!).accept(socket)) socket.destroy();
  }

  /** After the handshake: tcp_proxy over TLS, or HTTP (h2 by ALPN, else by the first bytes). */
  private onTlsEstablished(socket: tls.TLSSocket, raw: net.Socket): void {
    const ctx = (raw as TaggedSocket)[kContext];
    const terminating = ctx?.terminating;
    if (!ctx || !terminating) {
      socket.destroy();
      return;
    }
    ctx.terminating = undefined;
    (socket as unknown as TaggedSocket)[kContext] = ctx;
    const { listener, chain } = terminating;
    if (chain.terminal.kind === 'tcp') {
      proxyTcp(socket, chain.terminal, this.deps.runtime, { listenerName: listener.name, target: { host: ctx.dest.ip ?? '', port: ctx.dest.port }, serverName: ctx.serverName });
      return;
    }
    if (socket.alpnProtocol === 'h2') {
      this.h2.emit('connection', socket);
      return;
    }
    if (socket.alpnProtocol === 'http/1.1') {
      this.serveHttp1(socket);
      return;
    }
    // ALPN said nothing we serve (none, or Istio's names): HTTP/1.x, or h2 with prior knowledge
    // ("PRI" is no HTTP/1 method), told apart by the first decrypted bytes.
    let buffered: Buffer | null = null;
    const timer = setTimeout(() => socket.destroy(), SNIFF_TIMEOUT_MS);
    const onData = (chunk: Buffer) => {
      buffered = buffered ? Buffer.concat([buffered, chunk]) : chunk;
      if (buffered.length < 3 && buffered.equals(H2_PREFACE.subarray(0, buffered.length))) return;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.pause();
      socket.unshift(buffered);
      if (buffered.subarray(0, 3).equals(H2_PREFACE.subarray(0, 3))) {
        // node's h2 server turns away TLS sockets whose ALPN said nothing or http/1.1.
        if (socket.alpnProtocol === false || socket.alpnProtocol === 'http/1.1') (socket as { alpnProtocol: string | false | null }).alpnProtocol = 'h2';
        this.h2.emit('connection', socket);
      } else this.serveHttp1(socket);
    };
    socket.on('data', onData);
    socket.once('close', () => clearTimeout(timer));
  }

  /** The listener whose chains serve `dest`: this one, or a bind_to_port=false one for it. */
  private chainOwner(listener: CompiledListener, dest: Destination): CompiledListener {
    // Only use_original_dst hands off (virtualOutbound); an original_dst listener filter alone
    // (virtualInbound) matches the original destination against the listener's own chains.
    if (!listener.useOriginalDst) return listener;
    if (dest.port === listener.port) return listener;
    return this.deps.virtualListenerFor(dest) ?? listener;
  }

  private chainFor(
    listener: CompiledListener,
    dest: Destination,
    socket: net.Socket | undefined,
    seen: { applicationProtocols?: readonly string[]; transportProtocol?: 'raw_buffer' | 'tls'; serverName?: string } | undefined,
  ): CompiledFilterChain | undefined {
    const applicationProtocols = seen?.applicationProtocols;
    const transportProtocol = seen?.transportProtocol ?? 'raw_buffer';
    const cacheable = !listener.filterChains.some((c) => c.match.sourcePrefixRanges.length || c.match.sourcePorts.length);
    const key = `${dest.ip ?? ''}|${dest.port}|${applicationProtocols?.join(',') ?? ''}|${transportProtocol}|${seen?.serverName ?? ''}`;
    let cache = this.chainCache.get(listener);
    if (cacheable && cache?.has(key)) return cache.get(key) ?? undefined;
    const facts: ConnectionFacts = {
      destinationPort: dest.port,
      destinationIp: dest.ip,
      sourceIp: socket?.remoteAddress,
      sourcePort: socket?.remotePort,
      transportProtocol,
      serverName: seen?.serverName,
      applicationProtocols,
    };
    let chain: CompiledFilterChain | undefined;
    const owner = this.chainOwner(listener, dest);
    if (owner !== listener) chain = selectFilterChain(owner, facts);
    if (!chain) {
      // A capture listener's own chains for this destination, then its default chain.
      chain = selectFilterChain(listener, facts);
    }
    if (cacheable) {
      if (!cache) {
        cache = new Map();
        this.chainCache.set(listener, cache);
      }
      if (cache.size > 4096) cache.clear();
      cache.set(key, chain ?? null);
    }
    return chain;
  }

  /**
   * The HTTP connection manager for a request on `socket`: the chain for the connection's
   * destination, re-selected from the current config (so an LDS update applies to the next
   * request of a keep-alive connection). A tcp_proxy chain met by an HTTP request forwards the
   * request, as HTTP, to that chain's cluster.
   */
  private hcmFor(socket: net.Socket, protocols: string[]): HttpConnectionManagerConfig | undefined {
    const ctx = (socket as TaggedSocket)[kContext];
    const listener = this.current;
    if (ctx?.hcm && ctx.hcm.listener === listener) return ctx.hcm.hcm;
    const dest = ctx?.dest ?? { ip: socket.localAddress, port: socket.localPort ?? this.bindPort };
    const chain = this.chainFor(listener, dest, socket, ctx?.applicationProtocols ? ctx : { applicationProtocols: protocols });
    const hcm = !chain ? undefined : chain.terminal.kind === 'http' ? chain.terminal : this.httpOverTcpChain(chain);
    if (ctx) ctx.hcm = { listener, hcm };
    return hcm;
  }

  private httpOverTcpChain(chain: CompiledFilterChain): HttpConnectionManagerConfig {
    let hcm = this.synthesized.get(chain);
    if (hcm) return hcm;
    const tcp = chain.terminal as Extract<CompiledFilterChain['terminal'], { kind: 'tcp' }>;
    const cluster = tcp.cluster ?? tcp.weighted?.names[0] ?? '';
    const vhost = {
      name: 'tcp_passthrough',
      domains: ['*'],
      routes: [
        {
          name: 'tcp_passthrough',
          path: { kind: 'any' as const, value: '', caseSensitive: true },
          headers: [],
          query: [],
          fraction: 1,
          grpcOnly: false,
          action: {
            kind: 'forward' as const,
            cluster,
            clusterNotFoundStatus: 503,
            timeoutMs: 0,
            idleTimeoutMs: 0,
            hashPolicies: [],
            mirrors: [],
            autoHostRewrite: false,
            appendXForwardedHost: false,
            upgrades: new Set<string>(),
          },
          requestHeaders: { add: [], remove: [] },
          responseHeaders: { add: [], remove: [] },
          filters: {},
        },
      ],
      requestHeaders: { add: [], remove: [] },
      responseHeaders: { add: [], remove: [] },
      filters: {},
      mirrors: [],
      includeAttemptCount: false,
      includeAttemptCountInResponse: false,
    };
    const rc: CompiledRouteConfig = {
      name: `${tcp.statPrefix}.http`,
      version: '',
      virtualHosts: [vhost],
      exact: new Map(),
      suffixes: [],
      prefixes: [],
      catchAll: vhost,
      ignorePortInHostMatching: false,
      mostSpecificHeaderMutationsWins: false,
      requestHeaders: { add: [], remove: [] },
      responseHeaders: { add: [], remove: [] },
      raw: {},
    };
    hcm = {
      kind: 'http',
      statPrefix: tcp.statPrefix,
      inlineRouteConfig: rc,
      codec: 'AUTO',
      // The chain's network RBAC, evaluated per request instead of per connection.
      filters: [...(tcp.rbac ?? []).map((settings) => ({ kind: 'rbac' as const, name: settings.name, settings })), { kind: 'router', name: 'envoy.filters.http.router', suppressEnvoyHeaders: true }],
      generateRequestId: false,
      preserveExternalRequestId: true,
      alwaysSetRequestIdInResponse: false,
      useRemoteAddress: false,
      xffNumTrustedHops: 0,
      skipXffAppend: true,
      streamIdleTimeoutMs: 0,
      requestTimeoutMs: 0,
      idleTimeoutMs: tcp.idleTimeoutMs,
      serverHeader: 'pass-through',
      websocket: false,
      normalizePath: false,
      mergeSlashes: false,
      accessLogs: tcp.accessLogs,
      trafficDirection: tcp.trafficDirection,
    };
    this.synthesized.set(chain, hcm);
    return hcm;
  }

  // ---- HTTP ----
  private serveHttp1(socket: net.Socket): void {
    const conn = new Http1ServerConnection(socket, this.h1Owner);
    this.h1Connections.add(conn);
    socket.once('close', () => this.h1Connections.delete(conn));
    socket.resume();
  }

  /** A request (an Upgrade request too: websocket goes through the router as an upgrade). */
  private onHttp1Request(exchange: Http1Exchange, socket: net.Socket): void {
    const hcm = this.hcmFor(socket, ['http/1.1']);
    if (!hcm) {
      this.noChain(exchange);
      return;
    }
    new HttpStream(exchange, hcm, this.deps.runtime, this.config.name).start();
  }

  private onHttp2Stream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, flags: number): void {
    const exchange = new Http2Exchange(stream, headers, flags);
    const socket = exchange.socket; // read once per session (node's socket proxy traps every read)
    const hcm = socket ? this.hcmFor(socket, ['h2c']) : undefined;
    if (!hcm) {
      this.noChain(exchange);
      return;
    }
    new HttpStream(exchange, hcm, this.deps.runtime, this.config.name).start();
  }

  /** CONNECT host:port: a TCP tunnel through the chain owning that destination. */
  private onConnect(target: string, socket: net.Socket, head: Buffer): void {
    const { host, port } = splitHostPort(target.toLowerCase());
    const ip = host.replace(/^\[|\]$/g, '');
    const dest: Destination = { ip: net.isIP(ip) ? ip : undefined, port: Number(port ?? 443) };
    const chain = port ? this.chainFor(this.config, dest, socket, undefined) : undefined;
    // A TLS service behind CONNECT is matched by SNI only once its ClientHello arrives; sniff it.
    if (chain && chain.terminal.kind === 'tcp' && needsSniffing(this.chainOwner(this.config, dest), dest.port)) {
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      const inner = socket as TaggedSocket;
      inner[kContext] = { dest };
      if (head.length) socket.unshift(head);
      this.sniff(socket, inner[kContext]!, this.config);
      return;
    }
    socket.on('error', () => undefined);
    if (!chain) {
      socket.end('HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    if (chain.terminal.kind === 'tcp') {
      const tcp = chain.terminal;
      // ORIGINAL_DST-style passthrough dials the CONNECT target itself.
      proxyTcp(socket, tcp, this.deps.runtime, {
        listenerName: this.config.name,
        head,
        target: { host: ip, port: Number(port ?? 443) },
        onUpstreamConnected: () => socket.write('HTTP/1.1 200 Connection Established\r\n\r\n'),
        onUpstreamFailed: () => {
          if (socket.writable) socket.end('HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n');
        },
      });
      return;
    }
    // An HTTP chain: the tunnel carries HTTP for that destination; serve it like a connection.
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    const inner = socket as TaggedSocket;
    inner[kContext] = { dest };
    if (head.length) socket.unshift(head);
    this.sniff(socket, inner[kContext]!, this.config);
  }

  // ---- shutdown ----
  /** Stops accepting; in-flight requests finish; idle keep-alive connections close now. */
  drain(): void {
    if (this.draining) return;
    this.draining = true;
    this.server.close();
    for (const c of this.h1Connections) c.closeIfIdle();
    for (const s of this.sessions) s.close();
  }

  /** Drains, then cuts whatever is left after `graceMs`. Resolves when every socket closed. */
  close(graceMs: number): Promise<void> {
    this.drain();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        clearInterval(poll);
        resolve();
      };
      const timer = setTimeout(() => {
        for (const s of this.sockets) s.destroy();
        for (const s of this.sessions) s.destroy();
        done();
      }, Math.max(0, graceMs));
      const poll = setInterval(() => {
        for (const c of this.h1Connections) c.closeIfIdle();
        if (this.sockets.size === 0) done();
      }, 25);
      if (this.sockets.size === 0) done();
    });
  }

  /**
   * No chain accepts this request's connection any more, e.g. a plaintext keep-alive connection
   * after PeerAuthentication turned STRICT. Envoy closes such connections, and so do we on bound
   * listeners, so a policy change cannot be outlived by an open connection; on a capture listener
   * (HTTP_PROXY clients of 15001) a request-level 404 is kinder and says why.
   */
  private noChain(exchange: Exchange): void {
    if (this.isCapture(this.current)) noChainReply(exchange);
    else exchange.reset();
  }

  activeConnections(): number {
    return this.sockets.size;
  }
}

function noChainReply(exchange: Exchange): void {
  sendLocalReply(exchange, {
    status: 404,
    body: 'no filter chain for this destination',
    grpc: false,
    head: exchange.method === 'HEAD',
  });
}
