import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { hashPassword } from '../../src/auth/passwordHash.js';
import type { DkimKeyConfig } from '../../src/config/schema.js';
import { algorithmsFor, dkimConfigLines, writeBenchDkimKeys, type BenchDkim } from './benchDkimKeys.js';

const REPO = resolve(import.meta.dirname, '../..');
export const BENCH_HOSTNAME = 'bench.postern.test';
export const BENCH_USER = 'bench';
export const BENCH_SENDER = `bench@${BENCH_HOSTNAME}`;

/** How Postern was run: the built dist/ (what `npm run bench` builds), or src/ through tsx. */
export type PosternRunner = 'dist' | 'tsx';

export type BenchPolicy = 'default' | 'none';
export type BenchLimitStore = 'memory' | 'redis';

/** The next hop: the sink as smarthost, or as MX host found through `dnsServer` ("127.0.0.1:PORT"). */
export type BenchDelivery = { mode: 'smarthost' } | { mode: 'mx'; dnsServer: string };

export interface PosternUnderTest {
  pid: number;
  runner: PosternRunner;
  policy: BenchPolicy;
  rateLimitStore: BenchLimitStore;
  /** The DKIM keys it signs with, for the From domain of the bench's messages. */
  dkim: BenchDkim;
  dir: string;
  submissionPort: number;
  submissionsPort: number;
  user: string;
  password: string;
  /** Messages in the spool's queue (accepted, not yet delivered or failed). */
  queuedMessages(): Promise<number>;
  /** SIGTERM, wait for the exit, remove the temporary directory. */
  stop(): Promise<void>;
}

/** Newest modification time of any file under `dir` whose name ends in `suffix`. */
function newestMtime(dir: string, suffix: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith(suffix)) continue;
    newest = Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  }
  return newest;
}

/** dist/ when it exists and is at least as new as every source file, else src/ through tsx. */
export function chooseRunner(): { runner: PosternRunner; args: string[] } {
  const built = join(REPO, 'dist/cli/postern.cjs');
  if (existsSync(built) && newestMtime(join(REPO, 'dist'), '.js') >= newestMtime(join(REPO, 'src'), '.ts')) {
    return { runner: 'dist', args: [built] };
  }
  return { runner: 'tsx', args: ['--import', 'tsx', join(REPO, 'src/cli/index.ts')] };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((done) => server.close(() => done()));
  return port;
}

/**
 * The bench configuration. Ports are chosen here rather than with port 0 because at log
 * level warn Postern does not log the ports it bound. Limits are raised so the load
 * generator, not a limit, is what a scenario measures; the spool fsyncs as in production.
 */
function benchConfig(
  ports: { submission: number; submissions: number; sink: number },
  redisPort: number | undefined,
  delivery: BenchDelivery,
  dkimKeys: readonly DkimKeyConfig[],
): string {
  return [
    `hostname: ${BENCH_HOSTNAME}`,
    'listeners:',
    `  submission: { host: 127.0.0.1, port: ${ports.submission}, tls: starttls }`,
    `  submissions: { host: 127.0.0.1, port: ${ports.submissions}, tls: implicit }`,
    'http: { enabled: false }',
    'tls: { cert: certs/tls.crt, key: certs/tls.key, selfSigned: true }',
    'auth: { usersFile: users.yaml, lockout: { failures: 1000 } }',
    'limits: { maxMessageSize: 50MiB, maxRecipients: 1000, maxConnections: 5000, maxConnectionsPerIp: 5000 }',
    'spool: { dir: spool }',
    ...deliveryLines(ports.sink, delivery),
    'policies: { dir: policies }',
    ...(redisPort ? [`rateLimit: { store: redis, url: "redis://127.0.0.1:${redisPort}" }`] : []),
    ...dkimConfigLines(dkimKeys),
    'shutdown: { gracePeriod: 5s }',
    'log: { level: warn }',
    '',
  ].join('\n');
}

/**
 * Smarthost: every message to the sink, no DNS. MX: the sink is the MX host of the recipients'
 * domain, found through the bench's DNS server on every delivery as in production; the sink
 * offers no STARTTLS, so opportunistic TLS sends in plaintext, as it would to such a host.
 */
function deliveryLines(sinkPort: number, delivery: BenchDelivery): string[] {
  if (delivery.mode === 'smarthost') {
    return [`delivery: { mode: smarthost, smarthost: { host: 127.0.0.1, port: ${sinkPort}, tls: none }, concurrency: 20 }`];
  }
  return [
    `delivery: { mode: mx, mx: { port: ${sinkPort}, tls: opportunistic }, concurrency: 20 }`,
    `dns: { servers: [${JSON.stringify(delivery.dnsServer)}] }`,
  ];
}

/**
 * Waits until the port answers: with an SMTP greeting when `greeting` (the STARTTLS listener
 * speaks first in plaintext), else with a completed TCP connect (implicit TLS waits for the
 * client's handshake). Fails when the process exits.
 */
async function waitUntilListening(port: number, greeting: boolean, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`Postern exited with ${child.exitCode} while starting: ${output()}`);
    const greeted = await new Promise<boolean>((done) => {
      const socket = connect({ host: '127.0.0.1', port });
      socket.setTimeout(2000, () => {
        socket.destroy();
        done(false);
      });
      if (!greeting) {
        socket.once('connect', () => {
          socket.destroy();
          done(true);
        });
      }
      socket.once('data', (chunk: Buffer) => {
        socket.destroy();
        done(chunk.toString('latin1').startsWith('220'));
      });
      socket.once('error', () => done(false));
    });
    if (greeted) return;
    await sleep(100);
  }
  throw new Error(`Postern did not answer on 127.0.0.1:${port} within 60 s: ${output()}`);
}

/**
 * The policy the bench runs with: the shipped baseline (policies/*.yaml), with every
 * rate-limit maximum raised so the bench measures what evaluating the rules costs rather than
 * running into the limits; or none at all (an empty directory).
 */
async function writeBenchPolicy(dir: string, policy: BenchPolicy): Promise<void> {
  await mkdir(dir);
  if (policy === 'none') return;
  const shipped = join(REPO, 'policies');
  for (const name of readdirSync(shipped).filter((n) => /\.(ya?ml|mjs)$/.test(n))) {
    const text = await readFile(join(shipped, name), 'utf8');
    await writeFile(join(dir, name), text.replace(/max: \d+, per:/g, 'max: 1000000000, per:'));
  }
}

/** A throw-away redis-server on a free loopback port, for Redis-backed rate limits. */
async function startRedis(): Promise<{ port: number; stop(): Promise<void> }> {
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  child.once('error', () => undefined);
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const up = await new Promise<boolean>((done) => {
      const socket = connect({ host: '127.0.0.1', port }, () => {
        socket.destroy();
        done(true);
      });
      socket.once('error', () => done(false));
    });
    if (up) return { port, stop: async () => void (child.kill('SIGTERM'), await exited) };
    if (child.exitCode !== null) break;
    await sleep(50);
  }
  child.kill('SIGKILL');
  throw new Error('redis-server did not start (is it installed? apt-get install redis-server)');
}

/**
 * Starts Postern as `postern start` runs it, in a temporary directory (on the same disk as
 * the system's temp dir) with a generated config, a users file holding one bench user with a
 * real scrypt hash, a self-signed certificate, and its spool. Delivery goes to the sink,
 * as smarthost or as MX host. With `dkim` other than none it signs the bench's messages (From
 * BENCH_SENDER) with keys generated into that directory.
 */
export async function startPostern(options: {
  sinkPort: number;
  policy?: BenchPolicy;
  rateLimitStore?: BenchLimitStore;
  delivery?: BenchDelivery;
  dkim?: BenchDkim;
}): Promise<PosternUnderTest> {
  const policy = options.policy ?? 'default';
  const dkim = options.dkim ?? 'none';
  const rateLimitStore = options.rateLimitStore ?? 'memory';
  const dir = await mkdtemp(join(tmpdir(), 'postern-bench-'));
  await writeBenchPolicy(join(dir, 'policies'), policy);
  const dkimKeys = await writeBenchDkimKeys(dir, BENCH_HOSTNAME, algorithmsFor(dkim));
  const redis = rateLimitStore === 'redis' ? await startRedis() : undefined;
  const password = randomBytes(12).toString('base64url');
  await writeFile(
    join(dir, 'users.yaml'),
    `users:\n  ${BENCH_USER}:\n    password: "${await hashPassword(password)}"\n    senders: ["*@${BENCH_HOSTNAME}"]\n`,
    { mode: 0o600 },
  );
  await mkdir(join(dir, 'certs'));
  const ports = { submission: await freePort(), submissions: await freePort(), sink: options.sinkPort };
  const configFile = join(dir, 'postern.yaml');
  await writeFile(configFile, benchConfig(ports, redis?.port, options.delivery ?? { mode: 'smarthost' }, dkimKeys));

  const { runner, args } = chooseRunner();
  // POSTERN_BENCH_NODE_ARGS passes extra flags to Postern's node, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
  const nodeArgs = (process.env.POSTERN_BENCH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, ...args, 'start', '--config', configFile], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Kept short: at level warn Postern says little, and what it says is worth showing on failure.
  let output = '';
  const keep = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    }
    await redis?.stop();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitUntilListening(ports.submission, true, child, () => output.trim());
    await waitUntilListening(ports.submissions, false, child, () => output.trim());
  } catch (err) {
    await stop();
    throw err;
  }
  const queueDir = join(dir, 'spool', 'queue');
  return {
    pid: child.pid!,
    runner,
    policy,
    rateLimitStore,
    dkim,
    dir,
    submissionPort: ports.submission,
    submissionsPort: ports.submissions,
    user: BENCH_USER,
    password,
    async queuedMessages() {
      // One envelope (.json) per queued message; the .eml beside it is the message itself.
      const names = await readdir(queueDir).catch(() => [] as string[]);
      return names.filter((name) => name.endsWith('.json')).length;
    },
    stop,
  };
}
