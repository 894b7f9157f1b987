import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';

const REPO = resolve(import.meta.dirname, '../..');

function postern(...args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', join(REPO, 'src/cli/index.ts'), ...args], {
    cwd: REPO,
    encoding: 'utf8',
    env: { ...process.env, SMARTHOST_HOST: 'relay.example.net' },
  });
}

describe('postern check-config', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'postern-check-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('prints a summary and exits 0 for the shipped postern.yaml', () => {
    const result = postern('check-config', '--config', join(REPO, 'postern.yaml'));
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /configuration is valid/);
    assert.match(result.stdout, /submission: 127\.0\.0\.1:2587 \(starttls\)/);
    assert.match(result.stdout, /delivery: smarthost via relay\.example\.net:25/);
    assert.match(result.stdout, /policy: .*policies \(\d+ rules\)/);
  });

  test('rejects a policy file with a mistake, naming the file, the line and the key', async () => {
    const policies = join(dir, 'policies');
    await mkdir(policies);
    await writeFile(join(policies, '10-ok.yaml'), 'rules:\n  - name: size\n    type: message-size\n    params: { max: 5MiB }\n');
    await writeFile(join(policies, '20-bad.yaml'), 'rules:\n  - name: limits\n    type: rate-limit\n    params:\n      limits: [{ max: lots, per: 1m }]\n');
    const file = join(dir, 'with-policy.yaml');
    await writeFile(file, `delivery:\n  smarthost: { host: relay.example.net }\npolicies: { dir: ${JSON.stringify(policies)} }\n`);
    const result = postern('check-config', '--config', file);
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /20-bad\.yaml:\d+: .*limits/);
    assert.doesNotMatch(result.stderr, /10-ok\.yaml/);
  });

  test('rejects an unknown key and a bad duration, naming each key, and exits non-zero', async () => {
    const file = join(dir, 'bad.yaml');
    await writeFile(
      file,
      ['delivery:', '  smarthost: { host: relay.example.net }', '  retyr: { schedule: [1m] }', 'limits:', '  idleTimeout: 5 minutes', ''].join('\n'),
    );
    const result = postern('check-config', '--config', file);
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /delivery\.retyr: unknown key/);
    assert.match(result.stderr, /limits\.idleTimeout: "5 minutes" is not a duration/);
  });

  test('names a missing environment variable and the key that uses it', async () => {
    const file = join(dir, 'env.yaml');
    await writeFile(file, 'delivery:\n  smarthost: { host: "${POSTERN_TEST_UNSET_HOST}" }\n');
    const result = postern('check-config', '--config', file);
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /delivery\.smarthost\.host: environment variable POSTERN_TEST_UNSET_HOST is not set/);
  });

  test('says so when the file does not exist', () => {
    const result = postern('check-config', '--config', join(dir, 'missing.yaml'));
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /missing\.yaml[\s\S]*does not exist/);
  });
});
