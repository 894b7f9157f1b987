import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { parseConfig } from '../../../src/config/load.js';
import { configSchema } from '../../../src/config/schema.js';
import { copyParts, dockerignoreFilter, execForm, healthcheck, instructionsOf, parseDockerfile, type DockerStage } from '../../helpers/dockerfile.js';

/**
 * The image's contract read from the Dockerfile's text, so a change to the configuration
 * defaults, the executable or the build that the image does not follow fails here, without
 * Docker. What the image does when it runs is test/integration/containerContract.test.ts.
 */

const REPO = resolve(import.meta.dirname, '../../..');
const dockerfile = parseDockerfile(readFileSync(join(REPO, 'Dockerfile'), 'utf8'));
const runtime = dockerfile.stages.at(-1)!;
const DEFAULT_CONFIG_SOURCE = 'helm/postern/files/postern.yaml';

function stageNamed(name: string): DockerStage {
  const stage = dockerfile.stages.find((s) => s.name === name);
  assert.ok(stage, `a stage named ${name}`);
  return stage;
}

function envOf(stage: DockerStage): Record<string, string> {
  const env: Record<string, string> = {};
  for (const instruction of instructionsOf(stage, 'ENV')) {
    for (const pair of instruction.args.split(/\s+/)) {
      const at = pair.indexOf('=');
      if (at > 0) env[pair.slice(0, at)] = pair.slice(at + 1);
    }
  }
  return env;
}

/** The runtime stage's COPY whose source (from the context) is `source`. */
function copyOf(source: string): { destination: string } {
  const copy = instructionsOf(runtime, 'COPY')
    .map(copyParts)
    .find((parts) => parts.flags.from === undefined && parts.sources.includes(source));
  assert.ok(copy, `the runtime stage copies ${source}`);
  return copy;
}

/** The runtime stage's COPY --from=STAGE of `path`, and that stage. */
function copiedFromStage(path: string): DockerStage {
  const copy = instructionsOf(runtime, 'COPY')
    .map(copyParts)
    .find((parts) => parts.flags.from !== undefined && parts.sources.some((source) => source.endsWith(path)));
  assert.ok(copy, `the runtime stage copies ${path} from another stage`);
  return stageNamed(copy.flags.from!);
}

function runs(stage: DockerStage): string {
  return instructionsOf(stage, 'RUN')
    .map((instruction) => instruction.args)
    .join('\n');
}

/** The configuration defaults of the schema itself (hostname given: it defaults to the machine's). */
const schemaDefaults = configSchema.parse({ hostname: 'postern.test' });
const containerConfigPath = envOf(runtime).POSTERN_CONFIG;
const containerConfig = parseConfig(readFileSync(join(REPO, DEFAULT_CONFIG_SOURCE), 'utf8'), containerConfigPath ?? '/etc/postern/postern.yaml');

describe('the Dockerfile', () => {
  test('builds in separate stages and runs on the same Node.js 20 base it was built with', () => {
    assert.ok(dockerfile.stages.length >= 3, 'build, production dependencies and runtime stages');
    const build = stageNamed('build');
    assert.match(build.image, /^node:20-/);
    assert.equal(runtime.image, build.image);
    assert.equal(stageNamed('prod-deps').image, build.image, 'native modules, if any, are built for the runtime base');
  });

  test('installs dependencies only from the lockfile, and gives the runtime the production ones only', () => {
    for (const stage of dockerfile.stages) {
      assert.doesNotMatch(runs(stage), /\bnpm\s+(install|i|add)\b/, 'npm install may resolve versions the lockfile does not name');
    }
    assert.match(runs(copiedFromStage('dist')), /\bnpm ci\b/);
    assert.match(runs(copiedFromStage('dist')), /\bnpm run build\b/);
    const deps = copiedFromStage('node_modules');
    assert.match(runs(deps), /\bnpm ci\b[^\n&]*--omit=dev/);
    assert.ok(
      instructionsOf(deps, 'COPY').some((copy) => copyParts(copy).sources.includes('package-lock.json')),
      'the lockfile is in the stage that installs',
    );
  });

  test('runs as a fixed numeric UID and GID that are not root', () => {
    const users = instructionsOf(runtime, 'USER');
    assert.ok(users.length > 0, 'a USER instruction');
    const match = /^(\d+):(\d+)$/.exec(users.at(-1)!.args);
    assert.ok(match, `USER is numeric uid:gid (Kubernetes runAsNonRoot can only check a number): ${users.at(-1)!.args}`);
    assert.notEqual(Number(match[1]), 0);
    assert.notEqual(Number(match[2]), 0);
    assert.equal(envOf(runtime).NODE_ENV, 'production');
  });

  test('exposes exactly the listener and http ports of the configuration defaults', () => {
    const exposed = instructionsOf(runtime, 'EXPOSE')
      .flatMap((expose) => expose.args.split(/\s+/))
      .map((port) => Number(port.replace(/\/tcp$/, '')))
      .sort();
    for (const config of [schemaDefaults, containerConfig]) {
      const ports = [config.listeners.submission.port, config.listeners.submissions.port, config.http.port].sort();
      assert.deepEqual(exposed, ports);
    }
  });

  test('checks health with node itself against /healthz on the http port', () => {
    const [check] = instructionsOf(runtime, 'HEALTHCHECK');
    assert.ok(check, 'a HEALTHCHECK');
    const { command } = healthcheck(check);
    assert.equal(command[0], 'node', 'the slim base has no curl or wget');
    assert.ok(command.join(' ').includes(`http://127.0.0.1:${containerConfig.http.port}/healthz`), command.join(' '));
  });

  test('starts the postern executable in exec form as PID 1, stopped by SIGTERM', () => {
    const [entrypoint] = instructionsOf(runtime, 'ENTRYPOINT');
    const [cmd] = instructionsOf(runtime, 'CMD');
    assert.ok(entrypoint && cmd);
    // Shell form would make /bin/sh PID 1, and sh does not pass SIGTERM on to Node.
    const program = execForm(entrypoint.args);
    assert.ok(program, 'ENTRYPOINT in exec form');
    const bin = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { bin: Record<string, string> }).bin.postern;
    assert.deepEqual(program, ['node', `/app/${bin}`]);
    assert.deepEqual(execForm(cmd.args), ['start']);
    assert.equal(instructionsOf(runtime, 'STOPSIGNAL').at(-1)?.args, 'SIGTERM');
    assert.equal(instructionsOf(runtime, 'WORKDIR').at(-1)?.args, '/app');
  });

  test('reads the default configuration from the path POSTERN_CONFIG names, copied from the chart files', () => {
    assert.ok(containerConfigPath, 'ENV POSTERN_CONFIG');
    assert.equal(copyOf(DEFAULT_CONFIG_SOURCE).destination, containerConfigPath);
    assert.equal(copyOf('policies').destination.replace(/\/$/, ''), './policies');
    assert.equal(containerConfig.policies.dir, '/app/policies', 'the baseline policy the image ships');
  });

  test('writes, with its default configuration, only below the declared volume, and listens on every interface', () => {
    const volumes = instructionsOf(runtime, 'VOLUME').flatMap((volume) => execForm(volume.args) ?? volume.args.split(/\s+/));
    const written = [containerConfig.spool.dir, containerConfig.auth.usersFile, containerConfig.tls.cert, containerConfig.tls.key];
    for (const path of written) {
      assert.ok(
        volumes.some((volume) => path.startsWith(`${volume}/`)),
        `${path} is on a volume (${volumes.join(', ')}), so a read-only root filesystem works`,
      );
    }
    assert.equal(containerConfig.tls.selfSigned, true, 'the image starts alone, without a mounted certificate');
    assert.equal(containerConfig.listeners.submission.host, '0.0.0.0');
    assert.equal(containerConfig.listeners.submissions.host, '0.0.0.0');
    assert.equal(containerConfig.http.host, '0.0.0.0');
  });
});

describe('the .dockerignore', () => {
  const included = dockerignoreFilter(readFileSync(join(REPO, '.dockerignore'), 'utf8'));

  function filesUnder(path: string): string[] {
    const full = join(REPO, path);
    if (!statSync(full).isDirectory()) return [path];
    return readdirSync(full, { recursive: true, withFileTypes: true })
      .filter((entry) => entry.isFile())
      .map((entry) => relative(REPO, join(entry.parentPath, entry.name)));
  }

  test('sends the builder every file the Dockerfile copies from the context', () => {
    const sources = dockerfile.stages
      .flatMap((stage) => instructionsOf(stage, 'COPY'))
      .map(copyParts)
      .filter((parts) => parts.flags.from === undefined)
      .flatMap((parts) => parts.sources);
    assert.ok(sources.includes('package-lock.json'));
    for (const file of sources.flatMap(filesUnder)) assert.ok(included(file), `${file} is in the build context`);
  });

  test('keeps local dependencies, data, keys, git history and build output out of the context', () => {
    const local = ['node_modules/yaml/package.json', 'data/users.yaml', 'data/spool/q/x', 'certs/tls.key', 'certs/tls.crt', '.git/HEAD', 'dist/main.js', 'test/unit/x.test.ts', 'src/tls/leftover.key'];
    for (const path of local) assert.equal(included(path), false, `${path} stays out of the build context`);
  });
});
