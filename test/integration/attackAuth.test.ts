import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { hashPassword } from '../../src/auth/passwordHash.js';
import { ALICE, prepareGatewayDir, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startRedis } from '../helpers/redisServer.js';
import { sampleMessage } from '../helpers/messages.js';
import { freePort } from '../helpers/ports.js';
import { SmtpTestClient } from '../helpers/smtpClient.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';

/**
 * Attacks on authentication: guessing passwords (per client address, per user, and across two
 * replicas sharing Redis), telling users apart by the reply, acting as someone else through
 * the PLAIN authorization identity, and user names built to break whatever reads them.
 */

const BOB = { user: 'bob', password: 'bob has a long password too' };
const LOCKED = '454 4.7.0 Too many failed logins, try again later';
const INVALID = '535 5.7.8 Authentication credentials invalid';
// Three failures within 20s lock for 20s: long enough that no lock ends during a test.
const LOCKOUT_YAML = 'auth: { usersFile: users.yaml, failureDelay: 50ms, lockout: { failures: 3, window: 20s, duration: 20s } }';

/** An implicit-TLS session from its own loopback source address, greeted and past EHLO. */
async function connectFrom(port: number, localAddress: string): Promise<SmtpTestClient> {
  const client = await SmtpTestClient.connect(port, { implicitTls: true, localAddress });
  assert.equal((await client.greeting()).code, 220);
  assert.equal((await client.ehlo()).code, 250);
  return client;
}

/** One AUTH PLAIN in a session of its own from `localAddress`; the reply line. */
async function tryLogin(port: number, localAddress: string, user: string, password: string): Promise<string> {
  const client = await connectFrom(port, localAddress);
  const reply = await client.authPlain(user, password);
  await client.quit();
  return reply.last;
}

/** A gateway whose users file holds alice and bob, so one can be locked while the other logs in. */
async function gatewayWithTwoUsers(upstreamPort: number, extraYaml: string): Promise<TestGateway> {
  const dir = await prepareGatewayDir({ upstreamPort, extraYaml });
  await writeFile(
    join(dir.dir, 'users.yaml'),
    `users:\n` +
      `  ${ALICE.user}:\n    password: "${await hashPassword(ALICE.password)}"\n    senders: ["alice@example.com"]\n` +
      `  ${BOB.user}:\n    password: "${await hashPassword(BOB.password)}"\n    senders: ["bob@example.com"]\n`,
    { mode: 0o600 },
  );
  return startTestGateway({ upstreamPort, dir });
}

describe('authentication attacks on one gateway', () => {
  let upstream: Upstream;
  let postern: TestGateway;
  before(async () => {
    upstream = await startUpstream();
    postern = await gatewayWithTwoUsers(upstream.port, LOCKOUT_YAML);
  });
  after(async () => {
    await postern?.dispose();
    await upstream?.close();
  });
  const port = () => postern.submissionsPort;

  test('guessing from one address locks that address out with 454 4.7.0, even for a right password, and not other addresses', async () => {
    // Each guess names a different user, so only the per-address counter can reach the limit.
    for (const user of ['guess1', 'guess2', 'guess3']) assert.equal(await tryLogin(port(), '127.0.0.2', user, 'password1'), INVALID);
    assert.equal(await tryLogin(port(), '127.0.0.2', 'guess4', 'password1'), LOCKED);
    assert.equal(await tryLogin(port(), '127.0.0.2', ALICE.user, ALICE.password), LOCKED, 'the right password does not get through a lock');
    // A locked client cannot start a transaction either.
    const client = await connectFrom(port(), '127.0.0.2');
    assert.equal((await client.authPlain(ALICE.user, ALICE.password)).last, LOCKED);
    assert.equal((await client.command('MAIL FROM:<alice@example.com>')).last, '530 5.7.0 Authentication required');
    await client.quit();
    assert.equal(await tryLogin(port(), '127.0.0.3', ALICE.user, ALICE.password).then((r) => r.slice(0, 3)), '235', 'another address still logs in');
    assert.equal(upstream.rcptSeen.length, 0);
  });

  test('guessing one user from many addresses locks that user out, and not other users', async () => {
    for (const [i, address] of ['127.0.0.4', '127.0.0.5', '127.0.0.6'].entries()) {
      assert.equal(await tryLogin(port(), address, BOB.user, `guess ${i}`), INVALID);
    }
    assert.equal(await tryLogin(port(), '127.0.0.7', BOB.user, BOB.password), LOCKED, 'the user is locked wherever the login comes from');
    // The per-user count folds case: BOB is bob.
    assert.equal(await tryLogin(port(), '127.0.0.8', 'BOB', BOB.password), LOCKED);
    assert.match(await tryLogin(port(), '127.0.0.7', ALICE.user, ALICE.password), /^235 /, 'another user from the same address still logs in');
    assert.equal(upstream.rcptSeen.length, 0);
  });

  test('an unknown user and a wrong password get the same code and text, with PLAIN and with LOGIN', async () => {
    const client = await connectFrom(port(), '127.0.0.9');
    const plainWrong = await client.authPlain(ALICE.user, 'not her password');
    const plainUnknown = await client.authPlain('nobody-here', 'not her password');
    await client.quit();
    const other = await connectFrom(port(), '127.0.0.10');
    const loginWrong = await other.authLogin(ALICE.user, 'not her password');
    const loginUnknown = await other.authLogin('nobody-here', 'not her password');
    await other.quit();
    assert.equal(plainWrong.last, INVALID);
    assert.deepEqual([plainUnknown.last, loginWrong.last, loginUnknown.last], [INVALID, INVALID, INVALID]);
  });

  test('PLAIN with an authorization identity of another user is refused even with the right password, and nothing is relayed', async () => {
    const client = await connectFrom(port(), '127.0.0.11');
    assert.equal((await client.authPlain(ALICE.user, ALICE.password, BOB.user)).code, 535);
    assert.equal((await client.authPlain(ALICE.user, ALICE.password, 'postmaster@postern.test')).code, 535);
    assert.equal((await client.command('MAIL FROM:<bob@example.com>')).last, '530 5.7.0 Authentication required');
    // The identity the client authenticated as, named again as the authorization identity, is fine (RFC 4616 §2).
    assert.match((await client.authPlain(ALICE.user, ALICE.password, ALICE.user)).last, /^235 /);
    assert.equal((await client.command('MAIL FROM:<bob@example.com>')).code, 550, 'and it still sends only as alice');
    await client.quit();
    assert.equal(upstream.rcptSeen.length, 0);
  });

  for (const [name, user] of [
    ['CR LF and a command', 'alice\r\nMAIL FROM:<ceo@example.com>'],
    ['a NUL', 'alice\0'],
    ['an escape sequence', 'ali\x1b[2Jce'],
    ['a trailing TAB', 'alice\t'],
    ['a DEL', 'alice\x7f'],
  ] as const) {
    test(`a user name with ${name} is refused as malformed (501 5.5.4), with PLAIN and with LOGIN, even with alice's password`, async () => {
      const client = await connectFrom(port(), '127.0.0.12');
      const plain = await client.command(`AUTH PLAIN ${Buffer.from(`\0${user}\0${ALICE.password}`).toString('base64')}`);
      assert.match(plain.last, /^501 5\.5\.4 /, 'PLAIN');
      const login = await client.authLogin(user, ALICE.password);
      assert.match(login.last, /^501 5\.5\.4 /, 'LOGIN');
      assert.equal((await client.command('MAIL FROM:<alice@example.com>')).last, '530 5.7.0 Authentication required');
      await client.quit();
      assert.equal(upstream.rcptSeen.length, 0);
    });
  }

  for (const [name, user, password] of [
    ['a 1000-octet user name', 'u'.repeat(1000), 'x'],
    ['a 100 KiB user name', 'u'.repeat(100 * 1024), 'x'],
    ['a 100 KiB password', ALICE.user, 'p'.repeat(100 * 1024)],
    ['a 100 KiB password that starts with the right one', ALICE.user, ALICE.password + 'p'.repeat(100 * 1024)],
  ] as const) {
    test(`${name} is refused without harm to the gateway`, async () => {
      const client = await connectFrom(port(), '127.0.0.13');
      // RFC 4954 §4 lets an AUTH line pass 512 octets; past smtp-server's 16 KiB command limit
      // the answer is 421 and a closed connection. Either way a refusal, never 235.
      const plain = await client.authPlain(user, password).catch(() => undefined);
      if (plain) assert.ok(plain.code >= 500 || plain.last === '421 4.4.2 Error: Command line too long', `PLAIN: ${plain.last}`);
      client.destroy();
      const viaLogin = await connectFrom(port(), '127.0.0.13');
      const login = await viaLogin.authLogin(user, password).catch(() => undefined);
      if (login) assert.ok(login.code >= 500 || login.last === '421 4.4.2 Error: Command line too long', `LOGIN: ${login.last}`);
      viaLogin.destroy();
      // Still serving: a real login from an address of its own works.
      const fresh = await connectFrom(port(), '127.0.0.14');
      assert.match((await fresh.authPlain(ALICE.user, ALICE.password)).last, /^235 /);
      await fresh.quit();
      assert.equal(upstream.rcptSeen.length, 0);
    });
  }
});


describe('authentication attacks on two gateways sharing one Redis', () => {
  let redis: ChildProcess | undefined;
  let probe: Redis | undefined;
  let upstream: Upstream | undefined;
  const gateways: TestGateway[] = [];
  before(async () => {
    const redisPort = await freePort();
    redis = await startRedis(redisPort);
    upstream = await startUpstream();
    const yaml = `${LOCKOUT_YAML}\nrateLimit: { store: redis, url: "redis://127.0.0.1:${redisPort}" }`;
    for (let i = 0; i < 2; i++) gateways.push(await gatewayWithTwoUsers(upstream.port, yaml));
    // Each gateway counts in memory until its Redis connection is up; wait for both.
    probe = new Redis(redisPort, { host: '127.0.0.1', lazyConnect: false });
    const deadline = Date.now() + 10_000;
    for (;;) {
      const clients = (await probe.client('LIST')) as string;
      if (clients.trim().split('\n').length >= 3) break;
      if (Date.now() > deadline) throw new Error(`the gateways did not connect to Redis: ${clients}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  });
  after(async () => {
    for (const gateway of gateways) await gateway.dispose();
    probe?.disconnect();
    await upstream?.close();
    if (redis && redis.exitCode === null) {
      const exited = new Promise((r) => redis!.once('exit', r));
      redis.kill('SIGTERM');
      await exited;
    }
  });

  test('failures from one address on one gateway lock that address on the other', async () => {
    const [first, second] = gateways.map((g) => g.submissionsPort) as [number, number];
    assert.equal(await tryLogin(first, '127.0.0.20', 'guess1', 'x'), INVALID);
    assert.equal(await tryLogin(second, '127.0.0.20', 'guess2', 'x'), INVALID);
    assert.equal(await tryLogin(first, '127.0.0.20', 'guess3', 'x'), INVALID);
    assert.equal(await tryLogin(second, '127.0.0.20', ALICE.user, ALICE.password), LOCKED);
    assert.equal(await tryLogin(first, '127.0.0.20', ALICE.user, ALICE.password), LOCKED);
    assert.match(await tryLogin(second, '127.0.0.21', ALICE.user, ALICE.password), /^235 /, 'another address is not locked');
    assert.ok((await probe!.exists('postern:auth:ip:127.0.0.20')) === 1, 'the count is kept in Redis');
  });

  test('failures for one user spread over both gateways and many addresses lock that user on both', async () => {
    const [first, second] = gateways.map((g) => g.submissionsPort) as [number, number];
    assert.equal(await tryLogin(first, '127.0.0.22', BOB.user, 'guess 1'), INVALID);
    assert.equal(await tryLogin(second, '127.0.0.23', BOB.user, 'guess 2'), INVALID);
    assert.equal(await tryLogin(first, '127.0.0.24', BOB.user, 'guess 3'), INVALID);
    assert.equal(await tryLogin(second, '127.0.0.25', BOB.user, BOB.password), LOCKED);
    assert.equal(await tryLogin(first, '127.0.0.26', BOB.user, BOB.password), LOCKED);
    // Alice is untouched and can send; exactly her message reaches the upstream.
    const client = await connectFrom(second, '127.0.0.27');
    assert.match((await client.authPlain(ALICE.user, ALICE.password)).last, /^235 /);
    await client.command('MAIL FROM:<alice@example.com>');
    await client.command('RCPT TO:<carol@example.net>');
    assert.equal((await client.data(sampleMessage('after the lock'))).code, 250);
    await client.quit();
    const [message] = await upstream!.waitFor(1);
    assert.equal(message!.from, 'alice@example.com');
    assert.deepEqual(message!.to, ['carol@example.net']);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(upstream!.messages.length, 1);
  });
});
