import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, cp, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, resolve, sep } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { execForm, healthcheck, instructionsOf, parseDockerfile } from '../helpers/dockerfile.js';
import { authenticatedClient } from '../helpers/smtpClient.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';

/**
 * The container image's runtime contract, proven without Docker: the compiled dist/ with the
 * lockfile's production dependencies only, in an application directory nobody may write, run
 * as the image's non-root user with the image's entry point and default configuration; the
 * only writable directory is the one the image declares as its volume. The gateway must then
 * create its certificate and users file there, take a message over STARTTLS with AUTH, relay
 * it, answer the image's HEALTHCHECK, exit 0 on SIGTERM, and leave everything else untouched.
 */

const REPO = resolve(import.meta.dirname, '../..');
const dockerfile = parseDockerfile(await readFile(join(REPO, 'Dockerfile'), 'utf8'));
const runtimeStage = dockerfile.stages.at(-1)!;
const [runtimeUid, runtimeGid] = instructionsOf(runtimeStage, 'USER').at(-1)!.args.split(':').map(Number) as [number, number];
const entrypoint = execForm(instructionsOf(runtimeStage, 'ENTRYPOINT')[0]!.args)!;
const command = execForm(instructionsOf(runtimeStage, 'CMD')[0]!.args)!;
const healthcheckCommand = healthcheck(instructionsOf(runtimeStage, 'HEALTHCHECK')[0]!).command;

/** Where the image puts things, and where this test puts them instead. */
const IMAGE_APP = '/app';
const IMAGE_VOLUME = '/var/lib/postern';
const IMAGE_ETC = '/etc/postern';

const runningAsRoot = process.getuid?.() === 0;

/**
 * `argv` as the image's user. As root (here and in CI) the uid and gid switch with setpriv
 * (util-linux), with no supplementary groups, so root's group cannot help. Otherwise the test
 * already runs unprivileged, which is what matters.
 */
function asRuntimeUser(argv: string[]): [string, string[]] {
  if (!runningAsRoot) return [argv[0]!, argv.slice(1)];
  return ['setpriv', [`--reuid=${runtimeUid}`, `--regid=${runtimeGid}`, '--clear-groups', '--', ...argv]];
}

/** The image's `node`, resolved on this machine: the same binary running the tests. */
function imageArgv(argv: string[]): string[] {
  return argv.map((arg, i) => (i === 0 && arg === 'node' ? process.execPath : arg.startsWith(`${IMAGE_APP}/`) ? arg.replace(IMAGE_APP, layout.app) : arg));
}

interface Layout {
  root: string;
  /** /app: code, production node_modules, package.json, baseline policies; read-only. */
  app: string;
  /** /etc/postern: the configuration, as mounted; read-only. */
  etc: string;
  /** /var/lib/postern: the only writable directory. */
  volume: string;
  /** Stands in for a read-only /tmp: an empty directory nobody may write. */
  readOnlyTmp: string;
}
let layout: Layout;

/** What npm ci --omit=dev installs: every lockfile entry not marked dev, nested ones included. */
async function copyProductionDependencies(app: string): Promise<void> {
  const lock = JSON.parse(await readFile(join(REPO, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { dev?: boolean; optional?: boolean }>;
  };
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (path === '' || entry.dev) continue;
    const from = join(REPO, path);
    if (!existsSync(from)) {
      if (entry.optional) continue; // a platform package npm skips on this machine too
      throw new Error(`${path} is a production dependency in the lockfile but is not installed; run npm ci`);
    }
    // Nested node_modules are lockfile entries of their own, copied only when they are production too.
    await cp(from, join(app, path), { recursive: true, filter: (src) => !relative(from, src).split(sep).includes('node_modules') });
  }
}

/** Every entry below `dir` with its mode, size and modification time, to compare later. */
async function listing(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true });
  const lines = await Promise.all(
    entries.map(async (entry) => {
      const info = await stat(join(dir, entry));
      return `${entry} ${info.mode.toString(8)} ${info.isDirectory() ? '-' : info.size} ${info.mtimeMs}`;
    }),
  );
  return lines.sort();
}

/**
 * The image's default configuration with the image's paths moved into the test's directories,
 * loopback listeners on free ports (the image's ports may be taken here) and the upstream as
 * smarthost. Everything else is the shipped file as it is.
 */
async function containerConfig(upstreamPort: number): Promise<string> {
  const shipped = parseYaml(await readFile(join(REPO, 'helm/postern/files/postern.yaml'), 'utf8')) as Record<string, unknown>;
  const moved = JSON.parse(JSON.stringify(shipped), (_key, value: unknown) => {
    if (typeof value !== 'string') return value;
    for (const [image, here] of [
      [IMAGE_VOLUME, layout.volume],
      [IMAGE_APP, layout.app],
      [IMAGE_ETC, layout.etc],
    ] as const) {
      if (value === image || value.startsWith(`${image}/`)) return here + value.slice(image.length);
    }
    return value;
  }) as Record<string, Record<string, unknown>>;
  const listeners = moved.listeners as Record<string, Record<string, unknown>>;
  for (const listener of Object.values(listeners)) Object.assign(listener, { host: '127.0.0.1', port: 0 });
  return stringifyYaml({
    ...moved,
    hostname: 'postern.test',
    http: { ...moved.http, host: '127.0.0.1', port: 0 },
    delivery: {
      mode: 'smarthost',
      smarthost: { host: '127.0.0.1', port: upstreamPort, tls: 'starttls', verifyCertificate: false },
      retry: { schedule: ['300ms'], maxAge: '1h' },
    },
    shutdown: { gracePeriod: '2s' },
  });
}

function runtimeEnv(): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    // As in the image: no home directory to write to, and no writable temporary directory.
    HOME: '/nonexistent',
    TMPDIR: layout.readOnlyTmp,
    NODE_ENV: 'production',
    POSTERN_CONFIG: join(layout.etc, 'postern.yaml'),
  };
}

interface RunningImage {
  child: ChildProcess;
  logs: Array<Record<string, unknown>>;
  stderr: () => string;
  exited: Promise<number | null>;
  ports: { submission: number; submissions: number; http: number };
}

/** The image's ENTRYPOINT and CMD, as its user, in its WORKDIR; resolves once it has started. */
async function runImage(): Promise<RunningImage> {
  const [file, args] = asRuntimeUser(imageArgv([...entrypoint, ...command]));
  const child = spawn(file, args, { cwd: layout.app, env: runtimeEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: Array<Record<string, unknown>> = [];
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const ports: Record<string, number> = {};
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the gateway did not start in time; stderr: ${stderr}`)), 60_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the gateway exited with ${code} before it started; stderr: ${stderr}`));
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
      if (entry.msg === 'operations endpoints listening') ports.http = entry.port as number;
      if (entry.msg === 'postern started') {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return { child, logs, stderr: () => stderr, exited, ports: { submission: ports.submission!, submissions: ports.submissions!, http: ports.http! } };
}

/** The image's HEALTHCHECK command, as its user, against the port the gateway really has. */
function runHealthcheck(httpPort: number): number | null {
  const argv = healthcheckCommand.map((arg) => arg.replace('127.0.0.1:9587', `127.0.0.1:${httpPort}`));
  assert.notDeepEqual(argv, healthcheckCommand, 'the HEALTHCHECK names 127.0.0.1:9587');
  const [file, args] = asRuntimeUser(imageArgv(argv));
  return spawnSync(file, args, { cwd: layout.app, env: runtimeEnv(), timeout: 30_000 }).status;
}

function message(subject: string): string {
  return [
    'From: Postmaster <postmaster@postern.test>',
    'To: Bob <bob@example.net>',
    `Subject: ${subject}`,
    'Date: Mon, 30 Nov 2026 09:00:00 +0000',
    `Message-ID: <${subject.replace(/\W/g, '')}.${Date.now()}@postern.test>`,
    '',
    'Sent through the container image.',
    '',
  ].join('\r\n');
}

describe('the container image, run without Docker', () => {
  let upstream: Upstream;
  let before_: { app: string[]; etc: string[] };

  before(async () => {
    if (runningAsRoot) {
      assert.equal(spawnSync('setpriv', ['--version']).status, 0, 'setpriv (util-linux) runs the gateway as the image user');
    }
    const root = await mkdtemp(join(tmpdir(), 'postern-image-'));
    // mkdtemp makes a 0700 directory; the image's user must be able to walk into it.
    await chmod(root, 0o755);
    layout = { root, app: join(root, 'app'), etc: join(root, 'etc-postern'), volume: join(root, 'var-lib-postern'), readOnlyTmp: join(root, 'tmp') };

    // The build stage: `npm run build` is tsc -p tsconfig.build.json; here into the copy.
    const build = spawnSync(process.execPath, [join(REPO, 'node_modules/typescript/bin/tsc'), '-p', join(REPO, 'tsconfig.build.json'), '--outDir', join(layout.app, 'dist')], {
      cwd: REPO,
      encoding: 'utf8',
      timeout: 300_000,
    });
    assert.equal(build.status, 0, `npm run build failed:\n${build.stdout}${build.stderr}`);
    // The production-dependencies stage, then the runtime stage's other copies.
    await copyProductionDependencies(layout.app);
    await cp(join(REPO, 'package.json'), join(layout.app, 'package.json'));
    await cp(join(REPO, 'policies'), join(layout.app, 'policies'), { recursive: true });
    assert.equal(spawnSync('chmod', ['-R', 'a-w', layout.app]).status, 0);

    await mkdir(layout.readOnlyTmp, { mode: 0o555 });
    await chmod(layout.readOnlyTmp, 0o555);
    // The volume: an empty directory owned by the image's user, as the image creates it.
    await mkdir(layout.volume, { mode: 0o700 });
    if (runningAsRoot) await chown(layout.volume, runtimeUid, runtimeGid);

    upstream = await startUpstream();
    await mkdir(layout.etc);
    await writeFile(join(layout.etc, 'postern.yaml'), await containerConfig(upstream.port), { mode: 0o644 });
    assert.equal(spawnSync('chmod', ['-R', 'a-w', layout.etc]).status, 0);

    before_ = { app: await listing(layout.app), etc: await listing(layout.etc) };
  });

  after(async () => {
    await upstream?.close();
    if (layout) {
      spawnSync('chmod', ['-R', 'u+w', layout.root]);
      await rm(layout.root, { recursive: true, force: true });
    }
  });

  test('starts as its non-root user on a read-only application, relays mail, answers its health check and exits 0 on SIGTERM', async () => {
    const gateway = await runImage();
    try {
      // First start: a self-signed certificate and a users file with postmaster, on the volume.
      const created = gateway.logs.find((entry) => typeof entry.initialPassword === 'string');
      assert.ok(created, 'the first start logs the postmaster password');
      assert.equal(created.usersFile, join(layout.volume, 'users.yaml'));
      const password = created.initialPassword as string;

      const starttls = await authenticatedClient(gateway.ports.submission, { user: 'postmaster', password });
      assert.equal((await starttls.command('MAIL FROM:<postmaster@postern.test>')).code, 250);
      assert.equal((await starttls.command('RCPT TO:<bob@example.net>')).code, 250);
      const queued = await starttls.data(message('over starttls'));
      assert.equal(queued.code, 250, queued.last);
      await starttls.quit();

      const implicit = await authenticatedClient(gateway.ports.submissions, { user: 'postmaster', password }, { implicitTls: true });
      assert.equal((await implicit.command('MAIL FROM:<postmaster@postern.test>')).code, 250);
      assert.equal((await implicit.command('RCPT TO:<bob@example.net>')).code, 250);
      assert.equal((await implicit.data(message('over implicit tls'))).code, 250);
      await implicit.quit();

      const arrived = await upstream.waitFor(2);
      assert.deepEqual(arrived.map((m) => /Subject: (.*)\r\n/.exec(m.raw.toString())?.[1]).sort(), ['over implicit tls', 'over starttls']);
      assert.deepEqual(arrived[0]!.to, ['bob@example.net']);

      const health = await fetch(`http://127.0.0.1:${gateway.ports.http}/healthz`);
      assert.equal(health.status, 200);
      assert.equal((await fetch(`http://127.0.0.1:${gateway.ports.http}/readyz`)).status, 200);
      assert.equal(runHealthcheck(gateway.ports.http), 0, 'the image HEALTHCHECK passes');

      gateway.child.kill('SIGTERM');
      assert.equal(await gateway.exited, 0, gateway.stderr());
      assert.ok(gateway.logs.some((entry) => entry.msg === 'postern stopped'));
      assert.notEqual(runHealthcheck(gateway.ports.http), 0, 'the HEALTHCHECK fails once nothing answers');
    } finally {
      if (gateway.child.exitCode === null && gateway.child.signalCode === null) gateway.child.kill('SIGKILL');
    }
  });

  test('wrote only to the volume: certificate, users file and spool there, owned by the image user', async () => {
    assert.deepEqual(await listing(layout.app), before_.app, 'the application directory is unchanged');
    assert.deepEqual(await listing(layout.etc), before_.etc, 'the configuration directory is unchanged');
    assert.deepEqual(await readdir(layout.readOnlyTmp), []);
    assert.deepEqual((await readdir(layout.root)).sort(), ['app', 'etc-postern', 'tmp', 'var-lib-postern']);

    const key = await stat(join(layout.volume, 'tls/tls.key'));
    assert.equal(key.mode & 0o077, 0, 'the generated private key is readable by its owner only');
    for (const path of ['tls/tls.crt', 'tls/tls.key', 'users.yaml', 'spool']) {
      const info = await stat(join(layout.volume, path));
      if (runningAsRoot) assert.equal(info.uid, runtimeUid, `${path} belongs to the image user`);
    }
    assert.match(await readFile(join(layout.volume, 'users.yaml'), 'utf8'), /postmaster:/);
  });
});
