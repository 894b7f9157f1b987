import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { Redis } from 'ioredis';
import { freePort } from '../../helpers/ports.js';
import { createLimiterStore } from '../../../src/policy/limiterStore.js';
import { createLogger } from '../../../src/util/logger.js';

// These tests run a real redis-server (CI installs it with apt-get install -y redis-server).
// Without it they fail, saying so: a silently skipped test would pass a broken Redis path.

/** Starts redis-server on 127.0.0.1:`port`, without persistence; resolves once it accepts connections. */
async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server did not start on port ${port}:\n${output}`)), 5000);
    const fail = (err: Error) => {
      clearTimeout(timer);
      reject(err);
    };
    child.once('error', (err: NodeJS.ErrnoException) =>
      fail(err.code === 'ENOENT' ? new Error('redis-server is not installed: these tests need it (apt-get install -y redis-server)') : err),
    );
    child.once('exit', (code) => fail(new Error(`redis-server exited with ${code} on port ${port}:\n${output}`)));
    const collect = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
  });
  child.removeAllListeners('exit');
  return child;
}

async function stopRedis(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

/** A client configured as the gateway configures its own (src/main.ts), connected. */
async function connect(t: TestContext, port: number): Promise<Redis> {
  const redis = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1, enableOfflineQueue: false });
  redis.on('error', () => undefined); // connection failures are expected while the server is down
  t.after(() => redis.disconnect());
  await whenReady(redis);
  return redis;
}

async function whenReady(redis: Redis): Promise<void> {
  if (redis.status !== 'ready') await once(redis, 'ready', { signal: AbortSignal.timeout(8000) });
}

function capturingLogger(): { logger: ReturnType<typeof createLogger>; messages: () => string[] } {
  const lines: string[] = [];
  const logger = createLogger('debug', { write: (line: string) => void lines.push(line) });
  return { logger, messages: () => lines.map((line) => (JSON.parse(line) as { msg: string }).msg) };
}

describe('Redis limiter store', () => {
  test('two stores on two Redis clients share one limit: together they allow exactly the limit', { timeout: 10_000 }, async (t) => {
    const port = await freePort();
    const server = await startRedis(port);
    t.after(() => stopRedis(server));
    const [first, second] = [await connect(t, port), await connect(t, port)];
    const states: string[] = [];
    const stores = [first, second].map((redis) =>
      createLimiterStore({ store: 'redis', redis, logger: capturingLogger().logger, onFallback: (state) => states.push(state) }),
    );

    const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => stores[i % 2]!.consume('shared', 1, 10, 60_000)));

    assert.equal(answers.filter((answer) => answer.allowed).length, 10);
    assert.deepEqual(states, [], 'no call fell back to memory');
    // Every attempt was counted in Redis, under the documented key.
    assert.equal(await first.get('postern:rl:60s:shared'), '30');
    assert.ok((await first.pttl('postern:rl:60s:shared')) > 0, 'the key expires with its window');
    await Promise.all(stores.map((store) => store.close()));
  });

  test('when Redis goes away counting goes on in memory, and returns to Redis when it is back', { timeout: 10_000 }, async (t) => {
    const port = await freePort();
    let server = await startRedis(port);
    t.after(() => stopRedis(server));
    const redis = await connect(t, port);
    const states: string[] = [];
    const log = capturingLogger();
    const store = createLimiterStore({ store: 'redis', redis, logger: log.logger, onFallback: (state) => states.push(state) });

    assert.equal((await store.consume('alice', 1, 5, 60_000)).allowed, true);
    assert.equal((await store.consume('alice', 1, 5, 60_000)).allowed, true);
    assert.equal(await redis.get('postern:rl:60s:alice'), '2');

    const closed = once(redis, 'close');
    await stopRedis(server);
    await closed;

    // Memory knows nothing of Redis's count: it allows the limit again, then refuses.
    for (let i = 1; i <= 5; i++) assert.equal((await store.consume('alice', 1, 5, 60_000)).allowed, true, `count ${i} in memory`);
    assert.equal((await store.consume('alice', 1, 5, 60_000)).allowed, false);
    assert.deepEqual(states, ['fallback']);
    assert.deepEqual(
      log.messages().filter((msg) => msg.startsWith('rate limits')),
      ['rate limits fall back to memory: Redis unreachable'],
    );

    server = await startRedis(port);
    await whenReady(redis);
    assert.equal((await store.consume('alice', 1, 5, 60_000)).allowed, true);
    assert.equal(await redis.get('postern:rl:60s:alice'), '1', 'counted in the new Redis');
    assert.deepEqual(states, ['fallback', 'recovered']);
    assert.deepEqual(
      log.messages().filter((msg) => msg.startsWith('rate limits')),
      ['rate limits fall back to memory: Redis unreachable', 'rate limits back on Redis'],
    );
    await store.close();
  });
});
