import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { rm } from 'node:fs/promises';
import { describe, test } from 'node:test';
import { ALICE, prepareGatewayDir, spawnGateway } from '../helpers/gateway.js';
import { sampleMessage } from '../helpers/messages.js';
import { SmtpTestClient, authenticatedClient } from '../helpers/smtpClient.js';
import { startUpstream } from '../helpers/upstream.js';

describe('stopping the gateway', () => {
  test('on SIGTERM it stops accepting connections, lets an open session finish its message, delivers it, and exits 0', async () => {
    const upstream = await startUpstream();
    const prepared = await prepareGatewayDir({ upstreamPort: upstream.port, extraYaml: 'log: { level: info }\nshutdown: { gracePeriod: 10s }' });
    try {
      const gateway = await spawnGateway(prepared.configFile);
      const client = await authenticatedClient(gateway.submissionPort, ALICE);
      assert.equal((await client.command('MAIL FROM:<alice@example.com>')).code, 250);

      gateway.child.kill('SIGTERM');
      // Wait until the gateway has stopped listening: a new connection is refused.
      const deadline = Date.now() + 5000;
      let refused = false;
      while (!refused && Date.now() < deadline) {
        try {
          const probe = await SmtpTestClient.connect(gateway.submissionPort);
          probe.destroy();
          await new Promise((resolve) => setTimeout(resolve, 50));
        } catch {
          refused = true;
        }
      }
      assert.equal(refused, true, 'new connections are refused while draining');

      assert.equal((await client.command('RCPT TO:<bob@example.net>')).code, 250);
      const reply = await client.data(sampleMessage('during drain'));
      assert.equal(reply.code, 250, reply.last);
      await client.quit();

      assert.equal(await gateway.exited, 0);
      const [message] = await upstream.waitFor(1);
      assert.match(message!.raw.toString(), /Subject: during drain/);
      assert.ok(gateway.logs.some((entry) => entry.msg === 'postern stopped'));
    } finally {
      await upstream.close();
      await rm(prepared.dir, { recursive: true, force: true });
    }
  });
});

describe('starting the gateway', () => {
  test('a port already in use stops the start with one clear line and a non-zero exit', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const { port } = blocker.address() as AddressInfo;
    const prepared = await prepareGatewayDir({
      upstreamPort: 1,
      extraYaml: `listeners: { submission: { host: 127.0.0.1, port: ${port} }, submissions: { host: 127.0.0.1, port: 0 } }`,
    });
    try {
      const repo = resolve(import.meta.dirname, '../..');
      const result = spawnSync(process.execPath, ['--import', 'tsx', join(repo, 'src/cli/index.ts'), 'start', '--config', prepared.configFile], {
        cwd: repo,
        encoding: 'utf8',
        timeout: 30_000,
      });
      assert.notEqual(result.status, 0);
      assert.match(result.stderr, new RegExp(`^postern: Cannot listen on 127\\.0\\.0\\.1:${port} for submission: the address is in use`, 'm'));
      assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
    } finally {
      blocker.close();
      await rm(prepared.dir, { recursive: true, force: true });
    }
  });
});
