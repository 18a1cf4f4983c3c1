// Herald's HTTP listeners: plain HTTP (listen.http, on localhost by default, for a reverse proxy or
// local tools) and HTTPS (listen.https). They serve XMPP over WebSocket (RFC 7395) at
// /xmpp-websocket, connection discovery (XEP-0156 host-meta), and routes modules add (the sandbox
// push inbox, uploads). Cross-origin pages are welcome: browser clients are served from elsewhere.

import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { TLSSocket } from 'node:tls';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { HeraldServer } from './server.js';
import { C2sStream, listenOn } from './c2s.js';
import { WebSocketTransport } from './transports.js';
import { normalizeIp } from './limits.js';
import { escapeAttr } from './xml/escape.js';

export interface HttpRequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  /** Path parameters after the route prefix (`/push/inbox/{node}` → ['node']). */
  rest: string[];
}
export type HttpHandler = (ctx: HttpRequestContext) => void | Promise<void>;

type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

interface Route {
  method: string;
  prefix: string;
  exact: boolean;
  handler: HttpHandler;
}

const HOST_META_REL = 'urn:xmpp:alt-connections:websocket';

export class HttpService {
  private readonly routes: Route[] = [];
  private readonly wss: WebSocketServer;
  readonly ports: { http?: number; https?: number } = {};

  constructor(private readonly server: HeraldServer) {
    this.wss = new WebSocketServer({
      noServer: true,
      // Each message is one stanza: the stanza limit is the message limit (RFC 7395 §3.3.3).
      maxPayload: server.config.limits.max_stanza_size,
      perMessageDeflate: false,
      handleProtocols: (protocols) => (protocols.has('xmpp') ? 'xmpp' : false),
    });
    this.route('GET', '/.well-known/host-meta', (ctx) => this.hostMeta(ctx, false), true);
    this.route('GET', '/.well-known/host-meta.json', (ctx) => this.hostMeta(ctx, true), true);
  }

  /** Adds a route; `prefix` routes get the rest of the path split on '/'. */
  route(method: string, path: string, handler: HttpHandler, exact = false): void {
    this.routes.push({ method, prefix: path, exact, handler });
  }

  /** Starts the configured listeners (all on random ports when `ephemeral`); returns them. */
  async listen(ephemeral: boolean): Promise<HttpServer[]> {
    const servers: HttpServer[] = [];
    const { listen } = this.server.config;
    const listeners = [
      { kind: 'http' as const, port: listen.http, interfaces: listen.http_interfaces, make: (h: RequestHandler) => createHttpServer(h) },
      { kind: 'https' as const, port: listen.https, interfaces: listen.interfaces, make: (h: RequestHandler) => createHttpsServer(this.server.tlsServerOptions(), h) },
    ];
    for (const { kind, port, interfaces, make } of listeners) {
      if (port === 0 && !ephemeral) continue;
      const secure = kind === 'https';
      const made = await listenOn(
        () => {
          const srv = make((req, res) => void this.onRequest(req, res, secure));
          srv.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket, head, secure));
          return srv;
        },
        interfaces,
        ephemeral ? 0 : port,
        this.server.log,
        kind,
      );
      this.ports[kind] = portOf(made[0] as HttpServer | undefined);
      servers.push(...(made as HttpServer[]));
    }
    return servers;
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse, secure: boolean): Promise<void> {
    const url = new URL(req.url ?? '/', `${secure ? 'https' : 'http'}://${req.headers.host ?? 'localhost'}`);
    res.setHeader('Access-Control-Allow-Origin', '*');
    if (req.method === 'OPTIONS') {
      res.writeHead(204, { 'Access-Control-Allow-Methods': 'GET, PUT, POST, OPTIONS', 'Access-Control-Allow-Headers': 'Content-Type, Authorization' });
      res.end();
      return;
    }
    for (const route of this.routes) {
      if (route.method !== req.method) continue;
      const matches = route.exact ? url.pathname === route.prefix : url.pathname === route.prefix || url.pathname.startsWith(route.prefix + '/');
      if (!matches) continue;
      const rest = route.exact ? [] : url.pathname.slice(route.prefix.length).split('/').filter(Boolean).map(decodeURIComponent);
      try {
        await route.handler({ req, res, url, rest });
      } catch (err) {
        this.server.log.error({ err, path: url.pathname }, 'http handler failed');
        if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' });
        res.end('internal error\n');
      }
      return;
    }
    res.writeHead(404, { 'Content-Type': 'text/plain' });
    res.end('not found\n');
  }

  /** XEP-0156: where the WebSocket endpoint is, in XRD or JSON. */
  private hostMeta(ctx: HttpRequestContext, json: boolean): void {
    const href = this.websocketUrl(ctx.req, ctx.url.protocol === 'https:');
    if (json) {
      ctx.res.writeHead(200, { 'Content-Type': 'application/json' });
      ctx.res.end(JSON.stringify({ links: [{ rel: HOST_META_REL, href }] }));
      return;
    }
    ctx.res.writeHead(200, { 'Content-Type': 'application/xrd+xml' });
    ctx.res.end(`<?xml version='1.0' encoding='utf-8'?>\n<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>\n  <Link rel='${HOST_META_REL}' href='${escapeAttr(href)}'/>\n</XRD>\n`);
  }

  private websocketUrl(req: IncomingMessage, secure: boolean): string {
    const configured = this.server.config.http.websocket_url;
    if (configured) return configured;
    const forwarded = this.fromTrustedProxy(req) ? req.headers['x-forwarded-proto'] : undefined;
    const scheme = forwarded === 'https' || secure ? 'wss' : 'ws';
    return `${scheme}://${req.headers.host ?? this.server.domain}${this.server.config.http.websocket_path}`;
  }

  private fromTrustedProxy(req: IncomingMessage): boolean {
    return this.server.config.http.trusted_proxies.map(normalizeIp).includes(normalizeIp(req.socket.remoteAddress ?? ''));
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, secure: boolean): void {
    const path = (req.url ?? '/').split('?')[0];
    const protocols = String(req.headers['sec-websocket-protocol'] ?? '')
      .split(',')
      .map((p) => p.trim());
    if (path !== this.server.config.http.websocket_path || !protocols.includes('xmpp')) {
      // RFC 7395 §3.1: only the 'xmpp' subprotocol is spoken here.
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      const proxied = this.fromTrustedProxy(req);
      const forwardedFor = proxied ? String(req.headers['x-forwarded-for'] ?? '').split(',')[0]?.trim() : '';
      const remote = forwardedFor || req.socket.remoteAddress || 'unknown';
      const tls = req.socket instanceof TLSSocket ? req.socket : undefined;
      // A TLS-terminating proxy in front (or a client on this very host) counts as encrypted.
      const isSecure = secure || proxied;
      const seeOther = this.server.config.http.see_other_uri;
      if (seeOther) {
        // RFC 7395 §3.6.1: answer the client's <open/> with <close see-other-uri/>.
        ws.once('message', () => {
          ws.send(`<close xmlns='urn:ietf:params:xml:ns:xmpp-framing' see-other-uri='${escapeAttr(seeOther)}'/>`);
          ws.close(1000);
        });
        return;
      }
      new C2sStream(this.server, new WebSocketTransport(ws, remote, isSecure, tls)).start();
    });
  }
}

function portOf(server: HttpServer | undefined): number | undefined {
  const address = server?.address();
  return address && typeof address === 'object' ? address.port : undefined;
}
