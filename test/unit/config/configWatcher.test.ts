import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ConfigWatcher, changedPaths } from '../../../src/config/configWatcher.js';
import { loadConfig } from '../../../src/config/load.js';
import type { Config } from '../../../src/config/schema.js';
import { recordingLogger } from '../../helpers/mxWorld.js';

const BASE = 'delivery: { smarthost: { host: relay.example.net } }\nlimits: { maxRecipients: 50 }\n';

async function setup(t: { after(fn: () => Promise<void>): void }) {
  const dir = await mkdtemp(join(tmpdir(), 'postern-config-watch-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'postern.yaml');
  await writeFile(file, BASE);
  const applied: Config[] = [];
  const results: string[] = [];
  const { logger, entries } = recordingLogger();
  const watcher = new ConfigWatcher({
    file,
    initial: loadConfig(file).config,
    live: [{ sections: ['dkim'], apply: (config) => applied.push(config) }],
    logger,
    onReload: (result) => results.push(result),
  });
  t.after(async () => watcher.close());
  return { dir, file, watcher, applied, results, entries };
}

describe('reloading the configuration file', () => {
  test('a change to a live setting is applied when the file changes', async (t) => {
    const { dir, file, applied, results } = await setup(t);
    await writeFile(join(dir, 'k.key'), 'unused');
    await writeFile(file, `${BASE}dkim: { keys: [{ domain: example.com, selector: s1, keyFile: k.key }] }\n`);
    while (applied.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(applied[0]!.dkim.keys[0]!.selector, 's1');
    assert.equal(applied[0]!.dkim.keys[0]!.keyFile, join(dir, 'k.key'), 'paths are resolved as at start');
    assert.deepEqual(results, ['success']);
  });

  test('a file that no longer validates is refused and nothing is applied', async (t) => {
    const { file, watcher, applied, results, entries } = await setup(t);
    await writeFile(file, `${BASE}dkim: { keys: [{ domain: example.com }] }\n`);
    watcher.reload();
    assert.deepEqual(applied, []);
    assert.equal(results[0], 'failure');
    assert.ok(entries.some((e) => e.msg === 'configuration change refused; the running configuration stays' && /selector/.test(String(e.err))));
  });

  test('a change only a restart applies is named in a warning, and a live setting still applies', async (t) => {
    const { dir, file, watcher, applied, entries } = await setup(t);
    await writeFile(join(dir, 'k.key'), 'unused');
    await writeFile(file, `delivery: { smarthost: { host: relay.example.net } }\nlimits: { maxRecipients: 10 }\ndkim: { keys: [{ domain: example.com, selector: s1, keyFile: k.key }] }\n`);
    watcher.reload();
    assert.equal(applied.length, 1);
    const warning = entries.find((e) => e.msg === 'these configuration changes take effect at the next restart');
    assert.deepEqual(warning?.settings, ['limits.maxRecipients']);
  });

  test('a ConfigMap update, swapping the ..data symlink as Kubernetes does, is applied without a manual reload', async (t) => {
    const mount = await mkdtemp(join(tmpdir(), 'postern-configmap-'));
    t.after(() => rm(mount, { recursive: true, force: true }));
    const version = async (name: string, text: string) => {
      await mkdir(join(mount, name));
      await writeFile(join(mount, name, 'postern.yaml'), text);
    };
    await writeFile(join(mount, 'k.key'), 'unused');
    await version('..2026_11_30_01', BASE);
    await symlink('..2026_11_30_01', join(mount, '..data'));
    await symlink('..data/postern.yaml', join(mount, 'postern.yaml'));
    const file = join(mount, 'postern.yaml');
    const applied: Config[] = [];
    const watcher = new ConfigWatcher({
      file,
      initial: loadConfig(file).config,
      live: [{ sections: ['dkim'], apply: (config) => applied.push(config) }],
      logger: recordingLogger().logger,
    });
    t.after(async () => watcher.close());

    await version('..2026_11_30_02', `${BASE}dkim: { keys: [{ domain: example.com, selector: s2, keyFile: ${JSON.stringify(join(mount, 'k.key'))} }] }\n`);
    await symlink('..2026_11_30_02', join(mount, '..data_tmp'));
    await rename(join(mount, '..data_tmp'), join(mount, '..data'));
    while (applied.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(applied[0]!.dkim.keys[0]!.selector, 's2');
  });

  test('changed paths are named down to the second level', () => {
    const a = { limits: { maxRecipients: 1, maxConnections: 2 }, hostname: 'a' } as unknown as Config;
    const b = { limits: { maxRecipients: 1, maxConnections: 3 }, hostname: 'b' } as unknown as Config;
    assert.deepEqual(changedPaths(a, b), ['limits.maxConnections', 'hostname']);
  });
});
