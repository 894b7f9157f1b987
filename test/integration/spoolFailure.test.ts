import assert from 'node:assert/strict';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ALICE, gatewayWithUpstream, startTestGateway } from '../helpers/gateway.js';
import { sampleMessage, splitReceivedHeader } from '../helpers/messages.js';
import { recordingLogger, submit, waitUntil } from '../helpers/mxWorld.js';
import { freePort } from '../helpers/ports.js';
import { mountSmallFilesystem } from '../helpers/smallFilesystem.js';
import { authenticatedClient } from '../helpers/smtpClient.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';

describe('a spool that cannot be written', () => {
  const fixture = gatewayWithUpstream();

  test('answers 452 4.3.1, leaves no half message behind, and accepts again once the spool is writable', async () => {
    // Tests run as root, where permissions do not stop a write: put a file where the spool's
    // temp directory should be, which fails every write the way a broken volume does.
    const tmp = join(fixture.postern.dir, 'spool', 'tmp');
    await rm(tmp, { recursive: true, force: true });
    await writeFile(tmp, 'not a directory');

    const client = await authenticatedClient(fixture.postern.submissionPort, ALICE);
    await client.command('MAIL FROM:<alice@example.com>');
    await client.command('RCPT TO:<bob@example.net>');
    const refused = await client.data(sampleMessage('refused'));
    assert.equal(refused.last, '452 4.3.1 Insufficient system storage, try again later');
    assert.deepEqual(await readdir(join(fixture.postern.dir, 'spool', 'queue')), []);

    await rm(tmp);
    await mkdir(tmp);
    await client.command('MAIL FROM:<alice@example.com>');
    await client.command('RCPT TO:<bob@example.net>');
    const accepted = await client.data(sampleMessage('accepted'));
    assert.equal(accepted.code, 250, accepted.last);
    await client.quit();
    const [message] = await fixture.upstream.waitFor(1);
    assert.match(message!.raw.toString(), /Subject: accepted/);
  });
});

// A real full disk needs a filesystem of its own, and mounting one needs root: CI runs as
// root; elsewhere the case is skipped, saying why, rather than faked.
const SKIP_UNLESS_ROOT = process.getuid?.() !== 0 && 'mounting a small filesystem needs root (CI runs this test as root)';

describe('a spool whose disk runs full', () => {
  test('answers 452 4.3.1 while the disk is full, loses none of the messages it had accepted, and recovers when space returns', { skip: SKIP_UNLESS_ROOT }, async (t) => {
    const disk = await mountSmallFilesystem(4 * 1024 * 1024);
    // The next hop is down at first, so the accepted messages are still in the spool when it fills.
    const upstreamPort = await freePort();
    const { logger, entries } = recordingLogger();
    const postern = await startTestGateway({
      upstreamPort,
      extraYaml: `spool: { dir: ${JSON.stringify(join(disk.path, 'spool'))} }`,
      logger,
    });
    let upstream: Upstream | undefined;
    t.after(async () => {
      await postern.dispose();
      await upstream?.close();
      await disk.unmount();
    });
    const queue = join(disk.path, 'spool', 'queue');
    const queued = async () => (await readdir(queue)).filter((name) => name.endsWith('.json')).sort();

    const accepted = ['one', 'two', 'three'].map((subject) => sampleMessage(`before the disk filled ${subject}`));
    for (const message of accepted) await submit(postern, ['bob@example.net'], message);
    const before = await queued();
    assert.equal(before.length, 3);

    const filler = await disk.fill();
    assert.ok((await disk.free()) < 4096, 'the filesystem is full');

    const client = await authenticatedClient(postern.submissionPort, ALICE);
    for (const size of [256 * 1024, 2 * 1024]) {
      assert.equal((await client.command('MAIL FROM:<alice@example.com>')).code, 250);
      assert.equal((await client.command('RCPT TO:<bob@example.net>')).code, 250);
      const refused = await client.data(sampleMessage('x').replace('Hello Bob,', 'x'.repeat(size)));
      assert.equal(refused.last, '452 4.3.1 Insufficient system storage, try again later', `a ${size}-byte message`);
    }
    await client.quit();
    assert.deepEqual(await queued(), before, 'the queue holds exactly what was accepted');
    assert.deepEqual(await readdir(join(disk.path, 'spool', 'tmp')), [], 'no half-written message is left behind');

    // Delivery attempts meanwhile cannot record their state; they are logged and retried.
    await waitUntil('a delivery attempt failed to record its state on the full disk', () =>
      entries.some((entry) => /cannot record the delivery state/.test(String(entry.msg))) ? true : undefined,
    );
    assert.deepEqual(await queued(), before, 'failed bookkeeping loses nothing');

    await rm(filler);
    upstream = await startUpstream({ port: upstreamPort });
    const received = await upstream.waitFor(3, 20_000);
    await waitUntil('the queue is empty', async () => ((await queued()).length === 0 ? true : undefined));
    assert.deepEqual(
      received.map((message) => splitReceivedHeader(message.raw).rest.toString('latin1')).sort(),
      [...accepted].sort(),
      'every accepted message arrives once, byte for byte',
    );

    const big = sampleMessage('after the space returned').replace('Hello Bob,', 'y'.repeat(256 * 1024));
    await submit(postern, ['bob@example.net'], big);
    const [late] = (await upstream.waitFor(4)).slice(3);
    assert.equal(splitReceivedHeader(late!.raw).rest.toString('latin1'), big);
    assert.equal(upstream.messages.length, 4, 'no message was sent twice');
  });
});
