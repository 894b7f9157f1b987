import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { PosternError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';

export interface HttpEndpoints {
  readonly address: AddressInfo;
  close(): Promise<void>;
}

/**
 * The operations listener: /metrics (Prometheus text format from Postern's own registry),
 * /healthz (the event loop answers) and /readyz (503 until `ready()` says otherwise, e.g.
 * while starting or draining).
 */
export async function startHttpEndpoints(options: {
  host: string;
  port: number;
  registry: Registry;
  ready: () => boolean;
  logger: Logger;
}): Promise<HttpEndpoints> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/metrics') {
      options.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': options.registry.contentType }).end(text),
        (err: unknown) => {
          options.logger.error({ err: (err as Error).message }, 'metrics collection failed');
          res.writeHead(500).end();
        },
      );
      return;
    }
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    if (path === '/readyz') {
      const ready = options.ready();
      res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' }).end(ready ? 'ready\n' : 'not ready\n');
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  });
  await new Promise<void>((resolve, reject) => {
    const failed = (err: NodeJS.ErrnoException) =>
      reject(
        new PosternError('LISTEN_FAILED', `Cannot listen on ${options.host}:${options.port} for http: ${err.code === 'EADDRINUSE' ? 'the address is in use' : err.message}`, {
          cause: err,
        }),
      );
    server.once('error', failed);
    server.listen(options.port, options.host, () => {
      server.off('error', failed);
      resolve();
    });
  });
  return {
    address: server.address() as AddressInfo,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
