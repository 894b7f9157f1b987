import { SMTPServer } from 'smtp-server';
import { performance } from 'node:perf_hooks';
import type { AddressInfo } from 'node:net';
import { dkimSignatureAlgorithms } from './benchMessage.js';
import type { SinkDelivery, SinkMessage } from './sink.js';

/**
 * The bench's next hop, run as its own process (forked by sink.ts) so that reading messages
 * does not compete with the load generator's event loop. It accepts everything without TLS or
 * AUTH, finds each message's X-Bench-Id in its header block, and reports `[id, time, dkim]`
 * to the parent over IPC in batches every 50 ms, where dkim names the algorithms of the
 * DKIM-Signature fields on top ('' for none). Messages without an id are only counted.
 */

/** Enough for any header block the bench writes; a message without a blank line by then has no id. */
const MAX_HEADER_BYTES = 64 * 1024;
const FLUSH_INTERVAL_MS = 50;
const BENCH_ID = /^X-Bench-Id:[ \t]*(\S+)/im;

const send = (message: SinkMessage) => process.send?.(message);

let deliveries: SinkDelivery[] = [];
let withoutId = 0;

function flush(): void {
  if (deliveries.length === 0 && withoutId === 0) return;
  send({ type: 'deliveries', deliveries, withoutId });
  deliveries = [];
  withoutId = 0;
}

const server = new SMTPServer({
  secure: false,
  authOptional: true,
  disabledCommands: ['STARTTLS', 'AUTH'],
  logger: false,
  disableReverseLookup: true,
  banner: 'Postern bench sink',
  onData(stream, _session, callback) {
    let header = '';
    let headerDone = false;
    stream.on('data', (chunk: Buffer) => {
      if (headerDone) return;
      header += chunk.toString('latin1');
      const end = header.indexOf('\r\n\r\n');
      if (end !== -1) {
        header = header.slice(0, end);
        headerDone = true;
      } else if (header.length > MAX_HEADER_BYTES) {
        headerDone = true;
      }
    });
    stream.on('end', () => {
      const at = performance.timeOrigin + performance.now();
      const id = BENCH_ID.exec(header)?.[1];
      if (id) deliveries.push([id, at, dkimSignatureAlgorithms(header).join('+')]);
      else withoutId++;
      callback(null, 'Ok: sunk');
    });
  },
});

server.on('error', (err: Error) => {
  send({ type: 'error', message: err.message });
  process.exit(1);
});

const port = Number(process.argv[2] ?? 0);
server.listen(port, '127.0.0.1', () => {
  send({ type: 'listening', port: (server.server.address() as AddressInfo).port });
});
setInterval(flush, FLUSH_INTERVAL_MS);

process.on('message', (message: { type?: string }) => {
  if (message.type !== 'stop') return;
  flush();
  server.close(() => process.exit(0));
  // Connections the next hop's client keeps pooled would hold close() open; the parent is done.
  setTimeout(() => process.exit(0), 500).unref();
});
// The parent died or closed the channel: nobody is left to report to.
process.on('disconnect', () => process.exit(0));
