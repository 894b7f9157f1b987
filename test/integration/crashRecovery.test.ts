import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { mkdir, readdir, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { SMTPServer } from 'smtp-server';
import { ALICE, prepareGatewayDir, spawnGateway, type GatewayProcess } from '../helpers/gateway.js';
import { splitReceivedHeader } from '../helpers/messages.js';
import { authenticatedClient, type SmtpTestClient } from '../helpers/smtpClient.js';

/**
 * Crash safety under load: clients keep submitting while the gateway process is SIGKILLed at
 * random moments and restarted on the same spool. RFC 5321 section 6.1: once a server has
 * answered 250 to the end of DATA it has taken responsibility for the message, so every
 * message acknowledged before any of the crashes must still reach the next hop.
 */

const KILLS = 5;
const CLIENT_LOOPS = 3;
/** Delivery workers; a kill can repeat at most the transactions in flight, one per worker. */
const DELIVERY_CONCURRENCY = 4;
const KILL_DELAY_MS = { min: 200, max: 1500 };
/** Load that keeps running on the last process, so recovery also meets fresh traffic. */
const LOAD_AFTER_LAST_RESTART_MS = 800;
const FIRST_ACK_LIMIT_MS = 20_000;
/** The longest the upstream holds its reply to the end of DATA. */
const UPSTREAM_MAX_DELAY_MS = 400;
/** Only ends a hung test; a healthy run empties its queue in a second or two. */
const DRAIN_LIMIT_MS = 30_000;
const SEQ_HEADER = /^X-Test-Seq: (\S+)\r$/m;

/** mulberry32: a small seeded generator, so a failing run's kill timings can be replayed. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The message with sequence label `seq`: every fifth one about 64 KB, so some kills land
 * while DATA is still streaming into the spool, the rest small. Built from the label alone,
 * so what arrives can be compared byte for byte with what was sent.
 */
function testMessage(seq: string): Buffer {
  const n = Number(seq.slice(seq.lastIndexOf('-') + 1));
  const lines = n % 5 === 0 ? 850 : 3;
  const body = Array.from({ length: lines }, (_, i) => `${seq} line ${i} `.padEnd(76, 'x')).join('\r\n');
  return Buffer.from(
    [
      'From: Alice <alice@example.com>',
      'To: Bob <bob@example.net>',
      `Subject: crash test ${seq}`,
      'Date: Mon, 30 Nov 2026 09:00:00 +0000',
      `Message-ID: <${seq}@crash.example.com>`,
      `X-Test-Seq: ${seq}`,
      '',
      body,
      '',
    ].join('\r\n'),
  );
}

interface RecordingUpstream {
  port: number;
  /** Every message as it arrived, with its sequence label (undefined when it had none). */
  arrivals: Array<{ seq: string | undefined; raw: Buffer }>;
  close(): Promise<void>;
}

/**
 * The smarthost: smtp-server on loopback recording every message it accepts. `delayMs` is
 * asked once per message and holds the reply to the end of DATA that long, so some kills
 * land while Postern waits for the next hop's 250. The message counts as arrived just before
 * the 250 goes out, as a real server commits before it replies: a gateway killed in that
 * window has handed the message over without knowing it, and sends it again after restart.
 */
async function startRecordingUpstream(delayMs: () => number): Promise<RecordingUpstream> {
  const arrivals: RecordingUpstream['arrivals'] = [];
  const server = new SMTPServer({
    authOptional: true,
    disableReverseLookup: true,
    logger: false,
    onData(stream, _session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks);
        setTimeout(() => {
          arrivals.push({ seq: SEQ_HEADER.exec(raw.toString('latin1'))?.[1], raw });
          callback(null, 'Ok upstream');
        }, delayMs());
      });
    },
  });
  // Connections from a killed gateway end abruptly; that is the point, not a failure.
  server.on('error', () => undefined);
  const port = await new Promise<number>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.server.address() as AddressInfo).port));
  });
  return { port, arrivals, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/** What the clients know about each message they tried to submit. */
interface Ledger {
  /** Answered 250 after DATA: the gateway owns it. */
  acknowledged: Set<string>;
  /** Sent whole, but the connection died before a reply: it may or may not arrive. */
  unknown: Set<string>;
  /** Answered with anything but 250 after DATA: the gateway refused it. */
  refused: Map<string, string>;
}

/** One transaction. Throws when the session breaks, after noting the message's fate. */
async function submitOne(client: SmtpTestClient, seq: string, ledger: Ledger): Promise<void> {
  const mail = await client.command('MAIL FROM:<alice@example.com>');
  if (mail.code !== 250) throw new Error(`MAIL: ${mail.last}`);
  const rcpt = await client.command('RCPT TO:<bob@example.net>');
  if (rcpt.code !== 250) throw new Error(`RCPT: ${rcpt.last}`);
  const data = await client.command('DATA');
  if (data.code !== 354) throw new Error(`DATA: ${data.last}`);
  // From the first byte of the message on, a lost connection leaves its fate unknown.
  ledger.unknown.add(seq);
  client.write(Buffer.concat([testMessage(seq), Buffer.from('.\r\n')]));
  const reply = await client.read();
  ledger.unknown.delete(seq);
  if (reply.code === 250) ledger.acknowledged.add(seq);
  else ledger.refused.set(seq, reply.last);
}

/**
 * A client that keeps submitting to whichever gateway process is current: a few messages per
 * session, then QUIT and a new session; a broken session (the process was killed) is dropped
 * and a new one opened once a process listens again.
 */
async function clientLoop(
  name: string,
  current: () => GatewayProcess | undefined,
  stopping: () => boolean,
  ledger: Ledger,
  random: () => number,
): Promise<number> {
  let next = 0;
  while (!stopping()) {
    const gateway = current();
    if (!gateway) {
      await sleep(20);
      continue;
    }
    let client: SmtpTestClient;
    try {
      client = await authenticatedClient(gateway.submissionPort, ALICE);
    } catch {
      await sleep(50);
      continue;
    }
    try {
      const perSession = 1 + Math.floor(random() * 8);
      for (let i = 0; i < perSession && !stopping(); i++) {
        await submitOne(client, `${name}-${next++}`, ledger);
        await sleep(random() * 20);
      }
      await client.quit();
    } catch {
      client.destroy();
    }
  }
  return next;
}

/** Until the clients have more than `count` acknowledgements; bounded only to end a hung test. */
async function waitForAcknowledgement(ledger: Ledger, count: number): Promise<void> {
  const deadline = Date.now() + FIRST_ACK_LIMIT_MS;
  while (ledger.acknowledged.size <= count) {
    if (Date.now() > deadline) throw new Error(`no message was acknowledged within ${FIRST_ACK_LIMIT_MS} ms of a restart`);
    await sleep(10);
  }
}

async function entries(dir: string): Promise<string[]> {
  return readdir(dir).catch(() => [] as string[]);
}

describe('crash safety under load', () => {
  test('every message acknowledged with 250 reaches the next hop although the gateway is SIGKILLed again and again', async (t) => {
    const seed = Number(process.env.CRASH_SEED ?? randomInt(2 ** 31));
    t.diagnostic(`seed ${seed} (CRASH_SEED=${seed} replays the same kill delays and slow replies)`);
    // One generator per actor, so the order in which they run does not change what each draws.
    const killerRandom = seededRandom(seed);
    const upstreamRandom = seededRandom(seed ^ 0x5bd1e995);

    // One message in three waits a while for the next hop's 250.
    const upstream = await startRecordingUpstream(() => (upstreamRandom() < 1 / 3 ? upstreamRandom() * UPSTREAM_MAX_DELAY_MS : 0));
    // The shipped rate limits would start deferring this volume; what is under test is the spool.
    const prepared = await prepareGatewayDir({
      upstreamPort: upstream.port,
      extraYaml: [
        'log: { level: info }',
        `delivery: { mode: smarthost, smarthost: { host: 127.0.0.1, port: ${upstream.port}, tls: starttls, verifyCertificate: false }, concurrency: ${DELIVERY_CONCURRENCY}, retry: { schedule: [300ms], maxAge: 1h } }`,
        'policies: { dir: policies }',
      ].join('\n'),
    });
    await mkdir(join(prepared.dir, 'policies'));
    const spoolDir = join(prepared.dir, 'spool');

    let gateway: GatewayProcess | undefined;
    let stopping = false;
    const ledger: Ledger = { acknowledged: new Set(), unknown: new Set(), refused: new Map() };
    try {
      gateway = await spawnGateway(prepared.configFile);
      const loops = Array.from({ length: CLIENT_LOOPS }, (_, i) =>
        clientLoop(`c${i}`, () => gateway, () => stopping, ledger, seededRandom(seed + i + 1)),
      );

      for (let kill = 0; kill < KILLS; kill++) {
        // A fresh process needs a moment (first TLS handshakes, first password check) before
        // mail flows; the kill's random delay counts from its first 250, so every kill lands
        // under load rather than on an idle process.
        await waitForAcknowledgement(ledger, ledger.acknowledged.size);
        await sleep(KILL_DELAY_MS.min + killerRandom() * (KILL_DELAY_MS.max - KILL_DELAY_MS.min));
        const victim = gateway!;
        gateway = undefined;
        victim.child.kill('SIGKILL');
        await victim.exited;
        gateway = await spawnGateway(prepared.configFile);
      }
      await sleep(LOAD_AFTER_LAST_RESTART_MS);
      stopping = true;
      const submitted = (await Promise.all(loops)).reduce((sum, count) => sum + count, 0);

      // The load has stopped, so nothing joins the queue any more; once it is empty every
      // delivery has ended, and whatever has not arrived by then never will.
      const deadline = Date.now() + DRAIN_LIMIT_MS;
      for (let queued = await entries(join(spoolDir, 'queue')); queued.length > 0; queued = await entries(join(spoolDir, 'queue'))) {
        if (Date.now() > deadline) assert.fail(`after ${DRAIN_LIMIT_MS} ms, ${queued.length} file(s) are still in the spool's queue`);
        await sleep(50);
      }
      // Replies the upstream still holds for connections of killed processes land meanwhile.
      await sleep(UPSTREAM_MAX_DELAY_MS + 100);

      const counts = new Map<string, number>();
      for (const { seq } of upstream.arrivals) {
        assert.ok(seq !== undefined, 'every message at the upstream carries its sequence label');
        counts.set(seq, (counts.get(seq) ?? 0) + 1);
      }
      const duplicates = [...counts].filter(([, count]) => count > 1);
      const unknownArrived = [...ledger.unknown].filter((seq) => counts.has(seq)).length;
      t.diagnostic(
        `${KILLS} kills; ${submitted} transactions started, ${ledger.acknowledged.size} acknowledged, ` +
          `${ledger.unknown.size} without a reply (${unknownArrived} of them arrived), ${ledger.refused.size} refused; ` +
          `${upstream.arrivals.length} arrivals, ${duplicates.length} message(s) arrived more than once` +
          (duplicates.length > 0 ? `: ${duplicates.map(([seq, count]) => `${seq} x${count}`).join(', ')}` : ''),
      );

      assert.ok(ledger.acknowledged.size > 0, 'the load got messages through between the kills');
      const lost = [...ledger.acknowledged].filter((seq) => !counts.has(seq));
      assert.deepEqual(lost, [], 'every message acknowledged with 250 arrived at the upstream');
      const unexpected = [...counts.keys()].filter((seq) => !ledger.acknowledged.has(seq) && !ledger.unknown.has(seq));
      assert.deepEqual(unexpected, [], 'nothing arrived that was not submitted whole, or that the gateway refused');
      for (const { seq, raw } of upstream.arrivals) {
        assert.ok(splitReceivedHeader(raw).rest.equals(testMessage(seq!)), `${seq} arrived exactly as it was submitted`);
      }
      // A kill can repeat only the transactions in flight at that moment, one per worker.
      assert.ok(duplicates.length <= KILLS * DELIVERY_CONCURRENCY, `${duplicates.length} duplicates exceed ${KILLS} kills x ${DELIVERY_CONCURRENCY} workers`);
      assert.deepEqual(await entries(join(spoolDir, 'corrupt')), [], 'no crash left a record that recovery had to move aside');

      const last = gateway!;
      gateway = undefined;
      last.child.kill('SIGTERM');
      assert.equal(await last.exited, 0, 'the last process still stops cleanly');
    } finally {
      stopping = true;
      if (gateway) {
        gateway.child.kill('SIGKILL');
        await gateway.exited;
      }
      await upstream.close();
      await rm(prepared.dir, { recursive: true, force: true });
    }
  });
});
