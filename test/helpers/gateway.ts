import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before } from 'node:test';
import { hashPassword } from '../../src/auth/passwordHash.js';
import { parseConfig } from '../../src/config/load.js';
import { startGateway, type Gateway } from '../../src/main.js';
import { silentLogger, type Logger } from '../../src/util/logger.js';
import { startUpstream, type Upstream } from './upstream.js';

export const ALICE = { user: 'alice', password: 'correct horse battery staple' };
const REPO = resolve(import.meta.dirname, '../..');

let aliceHash: Promise<string> | undefined;

/** A fresh directory holding a users file with alice, and a config pointing at `upstreamPort`. */
export async function prepareGatewayDir(options: { upstreamPort: number; extraYaml?: string }): Promise<{ dir: string; configFile: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'postern-test-'));
  aliceHash ??= hashPassword(ALICE.password);
  await writeFile(
    join(dir, 'users.yaml'),
    `users:\n  ${ALICE.user}:\n    password: "${await aliceHash}"\n    senders: ["alice@example.com"]\n    groups: [staff]\n`,
    { mode: 0o600 },
  );
  await mkdir(join(dir, 'certs'));
  const configFile = join(dir, 'postern.yaml');
  await writeFile(configFile, gatewayYaml(options.upstreamPort, options.extraYaml ?? ''));
  return { dir, configFile };
}

/**
 * The test configuration: both listeners on free loopback ports, the upstream as smarthost over
 * STARTTLS (its certificate is smtp-server's own, hence no verification), fast retries. Keys in
 * `extra` are merged by YAML (later keys win), so a test states only what it changes.
 */
function gatewayYaml(upstreamPort: number, extra: string): string {
  const base: Record<string, string> = {
    hostname: 'postern.test',
    listeners: '{ submission: { host: 127.0.0.1, port: 0 }, submissions: { host: 127.0.0.1, port: 0 } }',
    http: '{ enabled: false }',
    tls: '{ cert: certs/tls.crt, key: certs/tls.key, selfSigned: true }',
    // A short failure delay keeps tests quick; its padding is covered by the authenticator's unit tests.
    auth: '{ usersFile: users.yaml, failureDelay: 50ms }',
    spool: '{ dir: spool }',
    delivery: `{ mode: smarthost, smarthost: { host: 127.0.0.1, port: ${upstreamPort}, tls: starttls, verifyCertificate: false }, retry: { schedule: [300ms], maxAge: 1h } }`,
    // The policy a fresh install ships with: tests see what users get.
    policies: `{ dir: ${JSON.stringify(join(REPO, 'policies'))} }`,
    shutdown: '{ gracePeriod: 2s }',
    log: '{ level: silent }',
  };
  for (const line of extra.split('\n')) {
    const match = /^([a-zA-Z]+):\s*(.+)$/.exec(line.trim());
    if (match) base[match[1]!] = match[2]!;
  }
  return Object.entries(base)
    .map(([key, value]) => `${key}: ${value}`)
    .join('\n');
}

export interface TestGateway {
  dir: string;
  configFile: string;
  gateway: Gateway;
  submissionPort: number;
  submissionsPort: number;
  stop(): Promise<void>;
  /** Stops and removes the directory. */
  dispose(): Promise<void>;
}

/** Postern in this process, on its real listeners, spool and files. */
export async function startTestGateway(options: {
  upstreamPort: number;
  extraYaml?: string;
  dir?: { dir: string; configFile: string };
  /** Where the gateway logs; silent unless a test reads the log. */
  logger?: Logger;
}): Promise<TestGateway> {
  const prepared = options.dir ?? (await prepareGatewayDir(options));
  const { readFile } = await import('node:fs/promises');
  const config = parseConfig(await readFile(prepared.configFile, 'utf8'), prepared.configFile);
  const gateway = await startGateway(config, { logger: options.logger ?? silentLogger(), configFile: prepared.configFile });
  return {
    ...prepared,
    gateway,
    submissionPort: gateway.addresses.submission!.port,
    submissionsPort: gateway.addresses.submissions!.port,
    stop: () => gateway.stop(),
    async dispose() {
      await gateway.stop();
      await rm(prepared.dir, { recursive: true, force: true });
    },
  };
}

export interface GatewayProcess {
  child: ChildProcess;
  submissionPort: number;
  submissionsPort: number;
  /** Every JSON log line so far. */
  logs: Array<Record<string, unknown>>;
  exited: Promise<number | null>;
}

/** Postern as its own process, started the way `postern start` is, for crash and signal tests. */
export async function spawnGateway(configFile: string, env: NodeJS.ProcessEnv = {}): Promise<GatewayProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'src/cli/index.ts'), 'start', '--config', configFile], {
    cwd: REPO,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Array<Record<string, unknown>> = [];
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const ports: Record<string, number> = {};
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gateway did not start in time; stderr: ${stderr}`)), 30_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited with ${code} before listening; stderr: ${stderr}`));
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      logs.push(entry);
      if (entry.msg === 'listening' && typeof entry.listener === 'string') ports[entry.listener] = entry.port as number;
      if (entry.msg === 'postern started') {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return { child, logs, exited, submissionPort: ports.submission!, submissionsPort: ports.submissions! };
}

export interface GatewayFixture {
  readonly upstream: Upstream;
  readonly postern: TestGateway;
}

/**
 * For a describe block: an upstream and a Postern relaying to it, started before the first
 * test and stopped after the last (Postern first, so its pooled connection does not hold the
 * upstream's close open). Read the fields inside tests, once before() has run.
 */
export function gatewayWithUpstream(extraYaml?: string): GatewayFixture {
  let upstream: Upstream | undefined;
  let postern: TestGateway | undefined;
  before(async () => {
    upstream = await startUpstream();
    postern = await startTestGateway({ upstreamPort: upstream.port, ...(extraYaml !== undefined && { extraYaml }) });
  });
  after(async () => {
    await postern?.dispose();
    await upstream?.close();
  });
  return {
    get upstream() {
      if (!upstream) throw new Error('the upstream starts in before()');
      return upstream;
    },
    get postern() {
      if (!postern) throw new Error('Postern starts in before()');
      return postern;
    },
  };
}
