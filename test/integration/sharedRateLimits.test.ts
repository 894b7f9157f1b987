import assert from 'node:assert/strict';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { ALICE, prepareGatewayDir, spawnGateway, type GatewayProcess } from '../helpers/gateway.js';
import { sampleMessage } from '../helpers/messages.js';
import { waitUntil } from '../helpers/mxWorld.js';
import { freePort } from '../helpers/ports.js';
import { authenticatedClient } from '../helpers/smtpClient.js';
import { startRedis, stopProcess } from '../helpers/redisServer.js';
import { startUpstream } from '../helpers/upstream.js';

async function submit(port: number, subject: string): Promise<number> {
  const client = await authenticatedClient(port, ALICE);
  await client.command('MAIL FROM:<alice@example.com>');
  await client.command('RCPT TO:<bob@example.net>');
  const reply = await client.data(sampleMessage(subject));
  await client.quit();
  return reply.code;
}

describe('rate limits shared through Redis', () => {
  test('two gateways on one Redis admit exactly the limit together, keep answering when Redis goes away, and share again when it is back', async () => {
    const redisPort = await freePort();
    let redis = await startRedis(redisPort);
    const upstream = await startUpstream();
    const dirs: string[] = [];
    const gateways: GatewayProcess[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const prepared = await prepareGatewayDir({
          upstreamPort: upstream.port,
          extraYaml: `log: { level: info }\nrateLimit: { store: redis, url: "redis://127.0.0.1:${redisPort}" }\npolicies: { dir: policies }`,
        });
        dirs.push(prepared.dir);
        await mkdir(join(prepared.dir, 'policies'));
        await writeFile(
          join(prepared.dir, 'policies', '10-limit.yaml'),
          'rules:\n  - name: five-a-minute\n    type: rate-limit\n    params: { count: messages, key: [user], limits: [{ max: 5, per: 1m }] }\n',
        );
        gateways.push(await spawnGateway(prepared.configFile));
      }

      const codes: number[] = [];
      for (let n = 0; n < 10; n++) codes.push(await submit(gateways[n % 2]!.submissionPort, `shared ${n}`));
      assert.equal(codes.filter((c) => c === 250).length, 5, `replies: ${codes.join(', ')}`);
      assert.equal(codes.filter((c) => c === 450).length, 5, `replies: ${codes.join(', ')}`);

      await stopProcess(redis);
      // Without Redis each gateway counts in its own memory and keeps answering.
      const during = await submit(gateways[0]!.submissionPort, 'redis is gone');
      assert.ok(during === 250 || during === 450, `a reply, not a failure: ${during}`);
      assert.ok(gateways[0]!.logs.some((entry) => /fall back to memory/.test(String(entry.msg))), 'the fallback is logged');

      // Redis returns (empty, as after a failover to a fresh replica): each gateway's client
      // reconnects by itself, and the next calls count there again.
      redis = await startRedis(redisPort);
      // A gateway that fell back says so when a count is served by Redis again.
      const onRedisAgain = (gateway: GatewayProcess) => {
        const switches = gateway.logs.filter((entry) => /fall back to memory|back on Redis/.test(String(entry.msg)));
        return switches.length === 0 || /back on Redis/.test(String(switches.at(-1)!.msg));
      };
      for (const gateway of gateways) {
        await waitUntil(
          'the gateway counts on Redis again',
          async () => {
            await submit(gateway.submissionPort, 'probe');
            return onRedisAgain(gateway) ? true : undefined;
          },
          () => gateway.logs.filter((entry) => /redis|Redis/.test(String(entry.msg))).slice(-4),
        );
      }
      const admin = new Redis({ host: '127.0.0.1', port: redisPort, lazyConnect: true });
      await admin.connect();
      await admin.flushall();
      admin.disconnect();
      const after: number[] = [];
      for (let n = 0; n < 10; n++) after.push(await submit(gateways[n % 2]!.submissionPort, `shared again ${n}`));
      assert.deepEqual(
        [after.filter((c) => c === 250).length, after.filter((c) => c === 450).length],
        [5, 5],
        `together again exactly the limit: ${after.join(', ')}`,
      );
    } finally {
      for (const gateway of gateways) {
        gateway.child.kill('SIGTERM');
        await gateway.exited;
      }
      await stopProcess(redis);
      await upstream.close();
      for (const dir of dirs) await rm(dir, { recursive: true, force: true });
    }
  });
});
