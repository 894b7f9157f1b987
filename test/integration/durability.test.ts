import assert from 'node:assert/strict';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ALICE, prepareGatewayDir, spawnGateway, startTestGateway } from '../helpers/gateway.js';
import { sampleMessage } from '../helpers/messages.js';
import { freePort } from '../helpers/ports.js';
import { authenticatedClient } from '../helpers/smtpClient.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';

async function submit(port: number, subjects: string[]): Promise<string[]> {
  const client = await authenticatedClient(port, ALICE);
  const ids: string[] = [];
  for (const subject of subjects) {
    await client.command('MAIL FROM:<alice@example.com>');
    await client.command('RCPT TO:<bob@example.net>');
    const reply = await client.data(sampleMessage(subject));
    assert.equal(reply.code, 250, reply.last);
    ids.push(/queued as (\S+)/.exec(reply.last)![1]!);
  }
  await client.quit();
  return ids;
}

async function spooledFiles(dir: string): Promise<string[]> {
  return (await readdir(join(dir, 'spool', 'queue')).catch(() => [] as string[])).sort();
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('accepted mail is never lost', () => {
  test('with the upstream down, a message is accepted, kept in the spool, and delivered once the upstream comes up', async () => {
    const port = await freePort();
    const postern = await startTestGateway({ upstreamPort: port });
    let upstream: Upstream | undefined;
    try {
      const [id] = await submit(postern.submissionPort, ['while down']);
      // Give delivery time to try and fail at least once.
      await new Promise((resolve) => setTimeout(resolve, 500));
      const files = await spooledFiles(postern.dir);
      assert.deepEqual(files, [`${id}.eml`, `${id}.json`]);

      upstream = await startUpstream({ port });
      const [message] = await upstream.waitFor(1);
      assert.match(message!.raw.toString(), /Subject: while down/);
      await waitUntil(async () => (await spooledFiles(postern.dir)).length === 0, 5000, 'the spool to empty');
    } finally {
      // Postern first: its pooled connection would otherwise hold the upstream's close open.
      await postern.dispose();
      await upstream?.close();
    }
  });

  test('a gateway process killed with messages in the spool delivers each of them exactly once after restart', async () => {
    const port = await freePort();
    const prepared = await prepareGatewayDir({ upstreamPort: port, extraYaml: 'log: { level: info }' });
    try {
      const first = await spawnGateway(prepared.configFile);
      const ids = await submit(first.submissionPort, ['one', 'two', 'three']);
      first.child.kill('SIGKILL');
      await first.exited;
      assert.equal((await spooledFiles(prepared.dir)).length, 6, 'three messages, each a message file and an envelope');

      const upstream = await startUpstream({ port });
      const second = await spawnGateway(prepared.configFile);
      try {
        await upstream.waitFor(3);
        await waitUntil(async () => (await spooledFiles(prepared.dir)).length === 0, 5000, 'the spool to empty');
        // Anything delivered twice would have arrived by now: retries run every 300ms here.
        await new Promise((resolve) => setTimeout(resolve, 700));
        const delivered = upstream.messages.map((m) => /with ESMTPSA id (\S+);/.exec(m.raw.toString())![1]).sort();
        assert.deepEqual(delivered, [...ids].sort());
      } finally {
        second.child.kill('SIGTERM');
        assert.equal(await second.exited, 0, 'SIGTERM stops the gateway cleanly');
        await upstream.close();
      }
    } finally {
      await rm(prepared.dir, { recursive: true, force: true });
    }
  });
});
