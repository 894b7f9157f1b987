import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { controlSocketPath } from '../../src/control/controlSocketPath.js';
import { RETURNED_BY_OPERATOR } from '../../src/delivery/queueControl.js';
import { parseEnvelope, type Envelope } from '../../src/spool/envelope.js';
import { Spool } from '../../src/spool/spool.js';
import { systemClock } from '../../src/util/clock.js';
import { silentLogger } from '../../src/util/logger.js';
import { ALICE, prepareGatewayDir, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { sampleMessage } from '../helpers/messages.js';
import { authenticatedClient } from '../helpers/smtpClient.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';

const REPO = resolve(import.meta.dirname, '../..');
const HOUR = 3_600_000;
const UNKNOWN_ID = '01JZZZZZZZZZZZZZ';

interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

/**
 * The real CLI as its own process. Asynchronous on purpose: the cases with a control server
 * serve it from this process, which must keep running while the command waits for answers.
 */
function runQueue(configFile: string, ...args: string[]): Promise<Run> {
  return new Promise((resolvePromise) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', join(REPO, 'src/cli/index.ts'), 'queue', ...args, '--config', configFile],
      { cwd: REPO, encoding: 'utf8' },
      (error, stdout, stderr) => resolvePromise({ status: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

async function queueMessage(spool: Spool, sender: string, recipients: string[], body: string): Promise<Envelope> {
  const incoming = await spool.createIncoming();
  await incoming.write(Buffer.from(body));
  const envelope = await incoming.commit({ sender, recipients, headers: 'Received: from client by postern.test\r\n' });
  // Deferred for an hour, as after a failed attempt, so a retry has something to change.
  const deferred: Envelope = {
    ...envelope,
    attempts: 1,
    nextAttemptAt: envelope.receivedAt + HOUR,
    recipients: envelope.recipients.map((r) => ({
      ...r,
      attempts: 1,
      lastReply: '451 4.2.0 mailbox busy',
      lastAttemptAt: envelope.receivedAt,
      remoteMta: 'mx.example.net',
    })),
  };
  await spool.update(deferred);
  return deferred;
}

async function onDisk(spoolDir: string, id: string): Promise<Envelope> {
  return parseEnvelope(await readFile(join(spoolDir, 'queue', `${id}.json`), 'utf8'));
}

describe('postern queue, with no gateway running', () => {
  let prepared: { dir: string; configFile: string };
  let spoolDir: string;
  before(async () => {
    prepared = await prepareGatewayDir({ upstreamPort: 1 });
    spoolDir = join(prepared.dir, 'spool');
  });
  after(async () => {
    await rm(prepared.dir, { recursive: true, force: true });
  });

  test('says the queue is empty, and that it reads the spool directly, without creating the spool', async () => {
    const result = await runQueue(prepared.configFile, 'list');
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout, 'Queue is empty\n');
    assert.equal(result.stderr, `no running gateway answers on ${controlSocketPath(spoolDir)}; acting on the spool directly\n`);
    await assert.rejects(readdir(spoolDir), { code: 'ENOENT' });
  });

  describe('with messages queued', () => {
    let first: Envelope;
    let second: Envelope;
    let third: Envelope;
    before(async () => {
      const spool = await Spool.open({ dir: spoolDir, logger: silentLogger(), clock: systemClock });
      first = await queueMessage(spool, 'alice@example.com', ['bob@example.net', 'carol@example.net'], 'Subject: hello\r\nFrom: alice@example.com\r\n\r\nthe body text\r\n');
      second = await queueMessage(spool, '', ['postmaster@example.org'], 'Subject: bounce\r\n\r\nnotification\r\n');
      third = await queueMessage(spool, 'alice@example.com', ['dave@example.org'], 'Subject: third\r\n\r\nthird body\r\n');
    });

    test('lists each message with its size, sender and every recipient with status and last reply, then a total', async () => {
      const result = await runQueue(prepared.configFile, 'list');
      assert.equal(result.status, 0, result.stderr);
      assert.match(result.stdout, new RegExp(`^${first.id}\\s+${first.size}\\s+\\d{4}-\\d\\d-\\d\\dT[\\d:]+Z\\s+alice@example\\.com`, 'm'));
      assert.match(result.stdout, new RegExp(`^${second.id}\\s+${second.size}\\s+\\S+\\s+<>`, 'm'));
      assert.match(result.stdout, /^\s+bob@example\.net\s+pending\s+\(451 4\.2\.0 mailbox busy\)$/m);
      assert.match(result.stdout, /^\s+carol@example\.net\s+pending/m);
      assert.ok(result.stdout.indexOf(first.id) < result.stdout.indexOf(second.id), 'oldest first');
      assert.match(result.stdout, new RegExp(`\\n3 messages, ${first.size + second.size + third.size} bytes\\n$`));
      assert.match(result.stderr, /acting on the spool directly/);
    });

    test('lists the envelopes as a JSON array', async () => {
      const result = await runQueue(prepared.configFile, 'list', '--json');
      assert.equal(result.status, 0, result.stderr);
      const listed = JSON.parse(result.stdout) as Envelope[];
      assert.deepEqual(
        listed.map((e) => e.id),
        [first.id, second.id, third.id],
      );
      assert.deepEqual(listed[0], first);
    });

    test('shows one message: its envelope and its header block, not its body', async () => {
      const result = await runQueue(prepared.configFile, 'show', first.id.toLowerCase());
      assert.equal(result.status, 0, result.stderr);
      assert.match(result.stdout, new RegExp(`^Message ${first.id}$`, 'm'));
      assert.match(result.stdout, /sender:\s+alice@example\.com/);
      assert.match(result.stdout, /bob@example\.net\s+pending\s+\(451 4\.2\.0 mailbox busy\)/);
      assert.match(result.stdout, /1 attempt, last .*, by mx\.example\.net/);
      assert.match(result.stdout, /^Received: from client by postern\.test\nSubject: hello\nFrom: alice@example\.com\n$/m);
      assert.doesNotMatch(result.stdout, /the body text/);
    });

    test('refuses to show, retry or delete an unknown ID, exiting 1', async () => {
      // bounce of an unknown ID: see the cases with a gateway below.
      for (const command of ['show', 'retry', 'delete']) {
        const result = await runQueue(prepared.configFile, command, UNKNOWN_ID);
        assert.equal(result.status, 1, `${command}: ${result.stderr}`);
        assert.match(result.stderr, new RegExp(`No message ${UNKNOWN_ID} in the queue`), command);
      }
      const notAnId = await runQueue(prepared.configFile, 'delete', '../queue');
      assert.equal(notAnId.status, 1);
      assert.match(notAnId.stderr, /No message \.\.\/queue in the queue/);
    });

    test('retry makes one message due now on disk, and --all every message', async () => {
      const one = await runQueue(prepared.configFile, 'retry', first.id);
      assert.equal(one.status, 0, one.stderr);
      assert.match(one.stdout, new RegExp(`Scheduled message ${first.id} for delivery when the gateway starts`));
      assert.ok((await onDisk(spoolDir, first.id)).nextAttemptAt < first.nextAttemptAt);
      assert.equal((await onDisk(spoolDir, third.id)).nextAttemptAt, third.nextAttemptAt);

      const all = await runQueue(prepared.configFile, 'retry', '--all');
      assert.equal(all.status, 0, all.stderr);
      assert.match(all.stdout, /Scheduled 3 messages for delivery/);
      assert.ok((await onDisk(spoolDir, third.id)).nextAttemptAt < third.nextAttemptAt);

      const neither = await runQueue(prepared.configFile, 'retry');
      assert.equal(neither.status, 1);
      assert.match(neither.stderr, /either a queue ID or --all/);
    });

    test('bounce records every pending recipient as failed by the operator, for the gateway to notify the sender', async () => {
      const result = await runQueue(prepared.configFile, 'bounce', first.id);
      assert.equal(result.status, 0, result.stderr);
      assert.match(result.stdout, new RegExp(`Returned message ${first.id}: 2 pending recipients marked failed; alice@example\\.com is sent a delivery status notification when the gateway starts`));
      const bounced = await onDisk(spoolDir, first.id);
      assert.deepEqual(
        bounced.recipients.map((r) => [r.status, r.lastReply, r.remoteMta]),
        [
          ['failed', RETURNED_BY_OPERATOR, undefined],
          ['failed', RETURNED_BY_OPERATOR, undefined],
        ],
      );
      const nullSender = await runQueue(prepared.configFile, 'bounce', second.id);
      assert.match(nullSender.stdout, /no notification: the message has the null sender <>/);

      const again = await runQueue(prepared.configFile, 'bounce', first.id);
      assert.equal(again.status, 0, again.stderr);
      assert.match(again.stdout, new RegExp(`Message ${first.id} has no pending recipient; nothing was changed`));
    });

    test('delete removes the message files, and a second delete finds nothing', async () => {
      const result = await runQueue(prepared.configFile, 'delete', third.id);
      assert.equal(result.status, 0, result.stderr);
      assert.match(result.stdout, new RegExp(`Deleted message ${third.id} from alice@example\\.com to 1 recipient; the sender is not told`));
      const files = await readdir(join(spoolDir, 'queue'));
      assert.equal(files.some((name) => name.startsWith(third.id)), false);
      assert.ok(files.includes(`${first.id}.eml`));

      const again = await runQueue(prepared.configFile, 'delete', third.id);
      assert.equal(again.status, 1);
      assert.match(again.stderr, /No message .* in the queue/);
    });

    test('a gateway alive on the spool without an answering socket makes changes refuse to run, and lookups still work', async (t) => {
      const standIn = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' });
      t.after(() => standIn.kill());
      await writeFile(join(spoolDir, 'postern.pid'), `${standIn.pid}\n`);
      t.after(() => rm(join(spoolDir, 'postern.pid'), { force: true }));

      const refused = await runQueue(prepared.configFile, 'delete', first.id);
      assert.equal(refused.status, 1);
      assert.match(refused.stderr, new RegExp(`a gateway \\(pid ${standIn.pid}\\) is running on .* but does not answer on its control socket`));
      assert.ok((await readdir(join(spoolDir, 'queue'))).includes(`${first.id}.json`), 'nothing was changed');
      const listed = await runQueue(prepared.configFile, 'list');
      assert.equal(listed.status, 0, listed.stderr);
      assert.match(listed.stdout, new RegExp(first.id));
    });
  });
});

describe('postern queue, with a gateway running', () => {
  let upstream: Upstream;
  let postern: TestGateway;
  /** The upstream defers this recipient (451) while true, so its messages stay queued. */
  let deferLater = true;
  before(async () => {
    upstream = await startUpstream({
      rcptReply: (address) => (deferLater && address === 'later@example.net' ? { code: 451, message: '4.2.0 Try again later' } : undefined),
    });
    // Retries an hour apart: a message stays where a command put it while the test looks.
    postern = await startTestGateway({
      upstreamPort: upstream.port,
      extraYaml: `delivery: { mode: smarthost, smarthost: { host: 127.0.0.1, port: ${upstream.port}, tls: starttls, verifyCertificate: false }, retry: { schedule: [1h], maxAge: 2h } }`,
    });
  });
  after(async () => {
    await postern?.dispose();
    await upstream?.close();
  });

  /** Submit a message to later@example.net and wait until its first attempt is recorded. */
  async function deferredMessage(subject: string): Promise<string> {
    const client = await authenticatedClient(postern.submissionPort, ALICE);
    assert.equal((await client.command('MAIL FROM:<alice@example.com>')).code, 250);
    assert.equal((await client.command('RCPT TO:<later@example.net>')).code, 250);
    const reply = await client.data(sampleMessage(subject));
    await client.quit();
    const id = /queued as (\S+)/.exec(reply.last)?.[1];
    assert.ok(id, reply.last);
    const spoolDir = join(postern.dir, 'spool');
    // The gateway attempts it a moment after accepting it; look until it has.
    for (let tries = 0; tries < 1000; tries += 1) {
      if ((await onDisk(spoolDir, id)).recipients[0]!.attempts > 0) return id;
      await new Promise((resolveWait) => setTimeout(resolveWait, 20));
    }
    throw new Error(`message ${id} was never attempted`);
  }

  test('lists a deferred message through the gateway, with the reply that deferred it', async () => {
    const id = await deferredMessage('listed');
    const result = await runQueue(postern.configFile, 'list');
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stderr, '', 'the gateway answered; no fallback to the spool');
    assert.match(result.stdout, new RegExp(`^${id}\\s+\\d+\\s+\\S+\\s+alice@example\\.com\\s+\\(next attempt`, 'm'));
    assert.match(result.stdout, /^\s+later@example\.net\s+pending\s+\(451 4\.2\.0 Try again later\)/m);

    const show = await runQueue(postern.configFile, 'show', id);
    assert.equal(show.status, 0, show.stderr);
    assert.equal(show.stderr, '');
    assert.match(show.stdout, /^Received: from /m, "Postern's own header comes first");
    assert.match(show.stdout, /^Subject: listed$/m);
  });

  test('bounce makes the gateway send the sender a delivery status notification', async () => {
    const id = await deferredMessage('bounced');
    const before = upstream.messages.length;
    const result = await runQueue(postern.configFile, 'bounce', id);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, new RegExp(`Returned message ${id}: 1 pending recipient marked failed; alice@example\\.com is sent a delivery status notification$`, 'm'));
    const [dsn] = (await upstream.waitFor(before + 1)).slice(before);
    assert.equal(dsn!.from, '');
    assert.deepEqual(dsn!.to, ['alice@example.com']);
    assert.match(dsn!.raw.toString(), /later@example\.net/);
  });

  test('delete takes a message out of the running queue and off the disk', async () => {
    const id = await deferredMessage('deleted');
    const result = await runQueue(postern.configFile, 'delete', id);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stderr, '');
    const files = await readdir(join(postern.dir, 'spool', 'queue'));
    assert.equal(files.some((name) => name.startsWith(id)), false);
    const list = await runQueue(postern.configFile, 'list', '--json');
    assert.equal((JSON.parse(list.stdout) as Envelope[]).some((e) => e.id === id), false);

    const again = await runQueue(postern.configFile, 'bounce', id);
    assert.equal(again.status, 1);
    assert.match(again.stderr, new RegExp(`^postern: No message ${id} in the queue$`, 'm'));
  });

  test('retry delivers a deferred message now instead of in an hour', async () => {
    const id = await deferredMessage('retried');
    deferLater = false;
    const before = upstream.messages.length;
    const result = await runQueue(postern.configFile, 'retry', id);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, new RegExp(`Scheduled message ${id} for delivery now`));
    const [delivered] = (await upstream.waitFor(before + 1)).slice(before);
    assert.deepEqual(delivered!.to, ['later@example.net']);
    assert.match(delivered!.raw.toString(), /Subject: retried/);
  });
});
