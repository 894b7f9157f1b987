import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { readFile } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { Envelope } from '../../src/spool/envelope.js';
import { ALICE, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { sampleMessage, splitReceivedHeader } from '../helpers/messages.js';
import { queuedIds, recordingLogger, startMxWorld, submit, waitUntil } from '../helpers/mxWorld.js';
import { freePort } from '../helpers/ports.js';
import { authenticatedClient } from '../helpers/smtpClient.js';
import { startUpstream } from '../helpers/upstream.js';

/**
 * Faults of the network around the gateway, as an attacker on the path or a broken peer
 * causes them: a next hop that speaks no SMTP, and DNS that never answers. Accepted mail is a
 * promise (RFC 5321 section 6.1): such faults must defer delivery, never lose or bounce the
 * message, and never stop the gateway taking new sessions.
 */

const FAST_RETRY = '{ schedule: [300ms], maxAge: 1h, jitter: 0 }';
/** Relay to the upstream with one attempt only: the next is an hour away. */
const SMARTHOST_ONE_HOUR = (port: number) =>
  `{ mode: smarthost, smarthost: { host: 127.0.0.1, port: ${port}, tls: starttls, verifyCertificate: false }, retry: { schedule: [1h], maxAge: 1d, jitter: 0 } }`;
/** MX hosts of the silent-host test: the first never greets, the second is a real server. */
const SILENT_MX = '127.0.0.2';
const ANSWERING_MX = '127.0.0.3';

async function readEnvelope(postern: TestGateway, id: string): Promise<Envelope | undefined> {
  try {
    return JSON.parse(await readFile(join(postern.dir, 'spool', 'queue', `${id}.json`), 'utf8')) as Envelope;
  } catch {
    // Not there, or caught between writes: the caller polls again.
    return undefined;
  }
}

/** Resolves with the envelope once an attempt has been recorded for its recipient. */
async function waitForDeferral(postern: TestGateway, id: string, timeoutMs?: number): Promise<Envelope> {
  let last: Envelope | undefined;
  return waitUntil(
    `message ${id} has a recorded attempt`,
    async () => {
      last = await readEnvelope(postern, id);
      return last && last.attempts >= 1 && last.recipients[0]?.lastReply !== undefined ? last : undefined;
    },
    () => last,
    timeoutMs,
  );
}

/** A new session gets through to AUTH: the gateway still answers after the fault. */
async function assertGatewayAnswers(postern: TestGateway): Promise<void> {
  const client = await authenticatedClient(postern.submissionPort, ALICE);
  const noop = await client.command('NOOP');
  assert.equal(noop.code, 250, 'a fresh session still works');
  await client.quit();
}

interface RawServer {
  readonly connections: number;
  close(): Promise<void>;
}

/** A TCP server on `host`:`port` that hands each connection to `greet`, counting them; close() drops them all. */
async function startRawServer(host: string, port: number, greet: (socket: Socket, nth: number) => void): Promise<RawServer> {
  const sockets = new Set<Socket>();
  let connections = 0;
  const server = createServer((socket) => {
    connections += 1;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    greet(socket, connections);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  return {
    get connections() {
      return connections;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Not an SMTP server: every connection gets an HTTP error and binary junk, or is dropped without a byte, alternately. */
function startGarbageServer(port: number): Promise<RawServer> {
  return startRawServer('127.0.0.1', port, (socket, nth) => {
    if (nth % 2 === 0) {
      socket.destroy();
      return;
    }
    socket.write('HTTP/1.1 400 Bad Request\r\n\r\n');
    socket.end(Buffer.concat([randomBytes(512), Buffer.from('\r\n\x00\xff250 \r\n', 'latin1')]));
  });
}

/** Takes TCP connections and never says a word: a tarpit, or a host whose SMTP service hangs. */
function startSilentServer(host: string, port: number): Promise<RawServer> {
  return startRawServer(host, port, () => undefined);
}

describe('network faults around the gateway', () => {
  test('a smarthost answering garbage defers the message, and a real smarthost on the same port then receives it', async (t) => {
    const port = await freePort();
    let garbage: RawServer | undefined = await startGarbageServer(port);
    let upstream: Awaited<ReturnType<typeof startUpstream>> | undefined;
    const postern = await startTestGateway({
      upstreamPort: port,
      extraYaml: `delivery: { mode: smarthost, smarthost: { host: 127.0.0.1, port: ${port}, tls: starttls, verifyCertificate: false }, retry: ${FAST_RETRY} }`,
    });
    t.after(async () => {
      await postern.dispose();
      await garbage?.close();
      await upstream?.close();
    });
    const message = sampleMessage('garbage next hop');

    const id = await submit(postern, ['bob@example.net'], message);

    const deferred = await waitForDeferral(postern, id);
    assert.equal(deferred.recipients[0]!.status, 'pending', 'a next hop speaking no SMTP is a temporary failure');
    assert.equal(deferred.recipients[0]!.dsnId, undefined, 'no bounce is queued');
    assert.ok(garbage.connections >= 1, 'the garbage server was tried');
    assert.ok(deferred.recipients[0]!.lastReply, 'the failed attempt is recorded with a reply');
    await assertGatewayAnswers(postern);
    assert.deepEqual(await queuedIds(postern), [id], 'the message stays queued, alone');

    await garbage.close();
    garbage = undefined;
    upstream = await startUpstream({ port });

    const [received] = await upstream.waitFor(1, 20_000);
    assert.equal(received!.from, 'alice@example.com');
    assert.deepEqual(received!.to, ['bob@example.net']);
    assert.equal(splitReceivedHeader(received!.raw).rest.toString('latin1'), message, 'the message arrives byte for byte after the Received header');
    await waitUntil('the queue is empty', async () => ((await queuedIds(postern)).length === 0 ? true : undefined));
    assert.equal(upstream.messages.length, 1, 'delivered once');
  });

  test('DNS that never answers defers an MX delivery with 4.4.3 and never bounces it', async (t) => {
    // A UDP socket that reads every query and answers none: the resolver times out.
    const silentDns = createSocket('udp4');
    let queries = 0;
    silentDns.on('message', () => (queries += 1));
    await new Promise<void>((resolve) => silentDns.bind(0, '127.0.0.1', resolve));
    const dnsPort = silentDns.address().port;
    // Nothing may be delivered anywhere; the MX port is never reached because no name resolves.
    const mxPort = await freePort();
    // One attempt only (the next is an hour away), so every query counted belongs to it.
    const postern = await startTestGateway({
      upstreamPort: mxPort,
      extraYaml:
        `delivery: { mode: mx, mx: { port: ${mxPort} }, retry: { schedule: [1h], maxAge: 1d, jitter: 0 } }\n` +
        `dns: { servers: ["127.0.0.1:${dnsPort}"], timeout: 200ms, tries: 3 }`,
    });
    t.after(async () => {
      await postern.dispose();
      silentDns.close();
    });

    const id = await submit(postern, ['bob@unanswered.test']);

    // The resolver gives up after 3 × 200 ms; the wait only ends a hung test.
    const deferred = await waitForDeferral(postern, id, 30_000);
    const recipient = deferred.recipients[0]!;
    assert.equal(recipient.status, 'pending', 'a DNS timeout is temporary');
    assert.match(recipient.lastReply!, /4\.4\.3/, `the reply names the directory server failure: ${recipient.lastReply}`);
    assert.equal(recipient.dsnId, undefined, 'no bounce is queued');
    assert.equal(queries, 3, 'the MX question was asked dns.tries times, each waiting dns.timeout');
    await assertGatewayAnswers(postern);
    assert.deepEqual(await queuedIds(postern), [id], 'the message stays queued, and no notification joins it');
  });

  test('a next hop that takes the connection and never greets is given up after delivery.mx.greetingTimeout; the next MX host gets the message', async (t) => {
    const world = await startMxWorld({
      zone: {
        zone: 'silent.test',
        mx: { 'silent.test': [{ preference: 10, exchange: 'mx1.silent.test' }, { preference: 20, exchange: 'mx2.silent.test' }] },
        hosts: { 'mx1.silent.test': [SILENT_MX], 'mx2.silent.test': [ANSWERING_MX] },
      },
      hosts: { [ANSWERING_MX]: {} },
      down: [SILENT_MX],
    });
    const silent = await startSilentServer(SILENT_MX, world.port);
    const postern = await startTestGateway({ upstreamPort: world.mailbox.port, extraYaml: world.deliveryYaml({ mx: 'greetingTimeout: 400ms' }) });
    t.after(async () => {
      await postern.dispose();
      await silent.close();
      await world.close();
    });

    await submit(postern, ['bob@silent.test']);

    // nodemailer's own default would wait 30 s and the RFC 5321 default 5 min; the wait ends a hung test only.
    const [received] = await world.hosts[ANSWERING_MX]!.waitFor(1, 15_000);
    assert.deepEqual(received!.to, ['bob@silent.test']);
    assert.ok(silent.connections >= 1, 'the silent host was tried first');
    await waitUntil('the queue is empty', async () => ((await queuedIds(postern)).length === 0 ? true : undefined));
    assert.equal(world.mailbox.messages.length, 0, 'nothing bounced');
  });

  test('a smarthost that never greets defers the message after smarthost.greetingTimeout, and keeps it', async (t) => {
    const port = await freePort();
    const silent = await startSilentServer('127.0.0.1', port);
    const postern = await startTestGateway({
      upstreamPort: port,
      extraYaml: `delivery: { mode: smarthost, smarthost: { host: 127.0.0.1, port: ${port}, tls: starttls, verifyCertificate: false, greetingTimeout: 300ms }, retry: { schedule: [1h], maxAge: 1d, jitter: 0 } }`,
    });
    t.after(async () => {
      await postern.dispose();
      await silent.close();
    });

    const id = await submit(postern, ['bob@example.net']);

    const deferred = await waitForDeferral(postern, id, 15_000);
    assert.equal(deferred.recipients[0]!.status, 'pending');
    assert.match(deferred.recipients[0]!.lastReply!, /greeting/i, `the recorded reason: ${deferred.recipients[0]!.lastReply}`);
    assert.equal(deferred.recipients[0]!.dsnId, undefined, 'no bounce is queued');
    await assertGatewayAnswers(postern);
  });

  test('a next hop refusing with a 30 KB reply: the recipient bounces, and the queue record, the log and the bounce carry a bounded reply', async (t) => {
    const hugeReply = `5.1.1 ${'no such user, '.repeat(2200)}`;
    const upstream = await startUpstream({ rcptReply: (address) => (address === 'bob@example.net' ? { code: 550, message: hugeReply } : undefined) });
    const { logger, entries } = recordingLogger();
    const postern = await startTestGateway({ upstreamPort: upstream.port, logger });
    t.after(async () => {
      await postern.dispose();
      await upstream.close();
    });

    await submit(postern, ['bob@example.net']);

    const [bounce] = await upstream.waitFor(1);
    assert.deepEqual(bounce!.to, ['alice@example.com'], 'the bounce goes back to the sender');
    const text = bounce!.raw.toString('latin1');
    assert.match(text, /^Status: 5\.1\.1/m);
    assert.ok(bounce!.raw.length < 20_000, `the bounce stays small: ${bounce!.raw.length} bytes`);
    const replies = entries.map((entry) => entry.reply).filter((reply): reply is string => typeof reply === 'string');
    assert.ok(replies.some((reply) => reply.startsWith('550 5.1.1 no such user')), 'the refusal is logged');
    assert.ok(Math.max(...replies.map((reply) => reply.length)) < 2100, 'no log line carries the whole reply');
  });

  test('a next hop whose reply never ends (200 KB) is cut off: the message waits, nothing bounces, the gateway goes on', async (t) => {
    const endlessReply = `5.1.1 ${'x'.repeat(200 * 1024)}`;
    const upstream = await startUpstream({ rcptReply: () => ({ code: 550, message: endlessReply }) });
    const postern = await startTestGateway({ upstreamPort: upstream.port, extraYaml: 'delivery: ' + SMARTHOST_ONE_HOUR(upstream.port) });
    t.after(async () => {
      await postern.dispose();
      await upstream.close();
    });

    const id = await submit(postern, ['bob@example.net']);

    const deferred = await waitForDeferral(postern, id);
    const recipient = deferred.recipients[0]!;
    assert.equal(recipient.status, 'pending', 'an over-long reply is no verdict: the message waits');
    assert.ok(recipient.lastReply!.length < 2100, `the recorded reason is bounded: ${recipient.lastReply!.length} characters`);
    assert.equal(recipient.dsnId, undefined, 'no bounce is queued');
    await assertGatewayAnswers(postern);
  });
});
