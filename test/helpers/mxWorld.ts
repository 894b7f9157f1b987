import { readdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { TestContext } from 'node:test';
import { createLogger, type Logger } from '../../src/util/logger.js';
import { startDnsServer, type DnsServer, type TestZone } from './dnsServer.js';
import { ALICE, startTestGateway, type TestGateway } from './gateway.js';
import { sampleMessage } from './messages.js';
import { freePort } from './ports.js';
import { authenticatedClient } from './smtpClient.js';
import { startUpstream, type Upstream, type UpstreamOptions } from './upstream.js';

/**
 * The world a direct-delivery test runs in: a DNS server (dnsmasq on loopback) serving the
 * test's zone, MX hosts as real SMTP servers on 127.0.0.x sharing one port (delivery.mx.port
 * is one port for every host, as 25 is in production), and the sender's own mailbox, where
 * the gateway's bounces and delay warnings for alice@example.com arrive.
 */

export interface MxWorldOptions {
  zone: TestZone;
  /** The MX hosts that answer, by loopback address (127.0.0.2, 127.0.0.3...). */
  hosts: Record<string, UpstreamOptions>;
  /** Addresses the zone names where nothing may listen on the common port: hosts that are down. */
  down?: string[];
  /** How the sender's mailbox answers; it accepts everything by default. */
  mailbox?: UpstreamOptions;
}

export interface MxWorld {
  dns: DnsServer;
  /** The port every MX host listens on. */
  port: number;
  /** The running MX hosts, by address. */
  hosts: Record<string, Upstream>;
  /** The server for example.com, alice's domain, reached by a `via: relay` route. */
  mailbox: Upstream;
  /**
   * The gateway's `delivery:` line: mode mx against this world's DNS and port, example.com
   * routed to the mailbox, fast retries without jitter. `mx` adds keys to delivery.mx,
   * `routes` adds routes after the mailbox's, `retry` replaces the retry section.
   */
  deliveryYaml(options?: { mx?: string; routes?: string[]; retry?: string; delayWarning?: string }): string;
  close(): Promise<void>;
}

const PORT_ATTEMPTS = 5;
/** Where alice's mail comes back to: her domain goes to the mailbox server, never by MX. */
const SENDER_DOMAIN = 'example.com';

export async function startMxWorld(options: MxWorldOptions): Promise<MxWorld> {
  const dns = await startDnsServer(options.zone);
  try {
    const mailbox = await startUpstream(options.mailbox ?? {});
    try {
      const { port, hosts } = await hostsOnOnePort(options.hosts, options.down ?? []);
      return {
        dns,
        port,
        hosts,
        mailbox,
        deliveryYaml({ mx, routes = [], retry, delayWarning } = {}) {
          const mailboxRoute = `{ domains: [${SENDER_DOMAIN}], via: relay, relay: { host: 127.0.0.1, port: ${mailbox.port}, tls: none } }`;
          return (
            'delivery: { mode: mx' +
            `, mx: { port: ${port}${mx ? `, ${mx}` : ''} }` +
            `, routes: [${[mailboxRoute, ...routes].join(', ')}]` +
            `, retry: ${retry ?? '{ schedule: [300ms], maxAge: 1h, jitter: 0 }'}` +
            `${delayWarning ? `, delayWarning: ${delayWarning}` : ''} }` +
            `\ndns: { servers: ["${dns.server}"] }`
          );
        },
        async close() {
          await Promise.all(Object.values(hosts).map((host) => host.close()));
          await mailbox.close();
          await dns.stop();
        },
      };
    } catch (error) {
      await mailbox.close();
      throw error;
    }
  } catch (error) {
    await dns.stop();
    throw error;
  }
}

/**
 * Starts every host on one port, free on all their addresses and on the `down` ones; a port
 * free on 127.0.0.1 a moment ago may be taken on another address, so on a clash it starts
 * over with another.
 */
async function hostsOnOnePort(specs: Record<string, UpstreamOptions>, down: string[]): Promise<{ port: number; hosts: Record<string, Upstream> }> {
  let lastError: unknown;
  for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
    const port = await freePort();
    const hosts: Record<string, Upstream> = {};
    try {
      for (const address of down) await assertFree(address, port);
      for (const [address, spec] of Object.entries(specs)) hosts[address] = await startUpstream({ ...spec, host: address, port });
      return { port, hosts };
    } catch (error) {
      lastError = error;
      await Promise.all(Object.values(hosts).map((host) => host.close()));
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
    }
  }
  throw lastError;
}

/** Binds and releases address:port, so a host meant to be down is not someone else's server. */
async function assertFree(address: string, port: number): Promise<void> {
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', reject);
    probe.listen(port, address, resolve);
  });
  await new Promise<void>((resolve) => probe.close(() => resolve()));
}

/**
 * A world and a gateway delivering into it (delivery as `deliveryYaml(delivery)` says), both
 * stopped when the test ends: the gateway first, so its pooled connections say QUIT and the
 * servers close at once. The log is recorded at debug level for the test to read.
 */
export async function startWorldAndGateway(
  t: TestContext,
  options: MxWorldOptions,
  delivery: Parameters<MxWorld['deliveryYaml']>[0] = {},
): Promise<{ world: MxWorld; postern: TestGateway; log: Array<Record<string, unknown>> }> {
  const world = await startMxWorld(options);
  const { logger, entries } = recordingLogger();
  let postern: TestGateway | undefined;
  t.after(async () => {
    await postern?.dispose();
    await world.close();
  });
  postern = await startTestGateway({ upstreamPort: world.mailbox.port, extraYaml: world.deliveryYaml(delivery), logger });
  return { world, postern, log: entries };
}

/**
 * Submits `message` as alice over STARTTLS with AUTH, as a mail client does; resolves with the
 * queue ID of the 250 reply and throws on any other reply.
 */
export async function submit(postern: TestGateway, recipients: string[], message: string = sampleMessage()): Promise<string> {
  const client = await authenticatedClient(postern.submissionPort, ALICE);
  try {
    const mail = await client.command('MAIL FROM:<alice@example.com>');
    if (mail.code !== 250) throw new Error(`MAIL FROM refused: ${mail.last}`);
    for (const recipient of recipients) {
      const rcpt = await client.command(`RCPT TO:<${recipient}>`);
      if (rcpt.code !== 250) throw new Error(`RCPT TO:<${recipient}> refused: ${rcpt.last}`);
    }
    const reply = await client.data(message);
    const queued = /^250 .*queued as (\S+)/.exec(reply.last);
    if (!queued) throw new Error(`message not queued: ${reply.last}`);
    return queued[1]!;
  } finally {
    await client.quit();
  }
}

/** The queue IDs in the gateway's spool queue directory, from the envelope files. */
export async function queuedIds(postern: TestGateway): Promise<string[]> {
  const files = await readdir(join(postern.dir, 'spool', 'queue'));
  return files.filter((name) => name.endsWith('.json')).map((name) => name.slice(0, -'.json'.length)).sort();
}

/**
 * Polls `probe` until it gives a value. The timeout only ends a test that hangs; it says what
 * was awaited and what was last seen.
 */
export async function waitUntil<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, describeLast: () => unknown = () => undefined, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not the case after ${timeoutMs / 1000} s; last seen: ${JSON.stringify(describeLast())}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Resolves once the gateway's queue holds no message at all. */
export async function waitForEmptyQueue(postern: TestGateway): Promise<void> {
  let last: string[] = [];
  await waitUntil(
    'the queue is empty',
    async () => {
      last = await readdir(join(postern.dir, 'spool', 'queue'));
      return last.length === 0 ? true : undefined;
    },
    () => last,
  );
}

/** A debug-level logger whose JSON lines the test reads back. */
export function recordingLogger(): { logger: Logger; entries: Array<Record<string, unknown>> } {
  const entries: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line) entries.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: createLogger('debug', sink), entries };
}
