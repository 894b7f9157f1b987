import assert from 'node:assert/strict';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { startDnsServer } from '../helpers/dnsServer.js';
import { ALICE, prepareGatewayDir, spawnGateway } from '../helpers/gateway.js';
import { authenticatedClient } from '../helpers/smtpClient.js';
import { startUpstream } from '../helpers/upstream.js';
import { rsaKey, signMessage } from '../unit/rules/dkimFixtures.js';

/**
 * The gateway's stdout is its log, one JSON object per line, which collectors parse. What a
 * client sends must not put anything else there. The case that did: mailauth's DKIM verifier
 * prints a bare line with console.log for a signature whose l= is more than the body holds.
 */

const key = rsaKey('client.test', 'sel');

test('a DKIM signature whose l= exceeds the body leaves the log stream pure JSON', async (t) => {
  const dns = await startDnsServer({ zone: 'client.test', txt: { [key.name]: key.txt } });
  const upstream = await startUpstream();
  const prepared = await prepareGatewayDir({
    upstreamPort: upstream.port,
    extraYaml: `log: { level: info }\npolicies: { dir: policies }\ndns: { servers: ["${dns.server}"] }`,
  });
  await mkdir(join(prepared.dir, 'policies'));
  await writeFile(join(prepared.dir, 'policies', '50-verify.yaml'), 'rules:\n  - name: signatures-verify\n    type: dkim-verify\n');
  const gateway = await spawnGateway(prepared.configFile);
  const stdout: string[] = [];
  gateway.child.stdout!.on('data', (chunk: Buffer) => stdout.push(chunk.toString('utf8')));
  t.after(async () => {
    gateway.child.kill('SIGTERM');
    await gateway.exited;
    await upstream.close();
    await dns.stop();
    await rm(prepared.dir, { recursive: true, force: true });
  });

  const body = 'Hello Bob, the whole of this line is covered by the signature.\r\n';
  const signed = await signMessage(
    ['From: Alice <alice@example.com>', 'To: bob@example.net', 'Subject: l= tag', 'Date: Thu, 01 Jan 2026 00:00:00 +0000', 'Message-ID: <l-tag@client.test>', '', body].join('\r\n'),
    [key],
    { maxBodyLength: Buffer.byteLength(body) },
  );
  // The body is cut after signing: the signature now claims more bytes (l=) than there are.
  const cut = signed.replace(body, 'Hello Bob.\r\n');

  const client = await authenticatedClient(gateway.submissionPort, ALICE);
  assert.equal((await client.command('MAIL FROM:<alice@example.com>')).code, 250);
  assert.equal((await client.command('RCPT TO:<bob@example.net>')).code, 250);
  const reply = await client.data(cut);
  assert.match(reply.last, /^550 5\.7\.20 /, 'the broken signature is refused');
  await client.quit();

  // The session's last log line is written once the client has gone.
  const deadline = Date.now() + 5_000;
  while (!stdout.join('').includes('"session closed"') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const lines = stdout.join('').split('\n').filter((line) => line !== '');
  const notJson = lines.filter((line) => {
    try {
      return typeof JSON.parse(line) !== 'object';
    } catch {
      return true;
    }
  });
  assert.deepEqual(notJson, [], 'every stdout line is a JSON log entry');
  assert.ok(lines.length > 5, 'the gateway did log the session');
});
