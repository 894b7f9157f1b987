import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserStore, type ReloadOutcome } from '../../../src/auth/userStore.js';
import { silentLogger } from '../../../src/util/logger.js';
import { capturingLogger, nextEvent, tempDir } from './support.js';

const HASH = '$2y$05$' + 'a'.repeat(53);
const userBlock = (name: string) => `  ${name}:\n    password: "${HASH}"\n`;

async function openWatched(path: string, logger = silentLogger()) {
  let deliver: ((outcome: ReloadOutcome) => void) | undefined;
  const { store } = await UserStore.open({
    path,
    logger,
    watchOptions: { debounceMs: 20, pollMs: 100 },
    onReload: (outcome) => deliver?.(outcome),
  });
  const nextReload = () => nextEvent<ReloadOutcome>((d) => (deliver = d), 'a reload of the users file');
  return { store, nextReload };
}

describe('user store reloading', () => {
  test('the store re-reads an edited users file by itself', async (t) => {
    const { dir, cleanup } = tempDir();
    t.after(cleanup);
    const path = join(dir, 'users.yaml');
    writeFileSync(path, `users:\n${userBlock('alice')}`);
    const { store, nextReload } = await openWatched(path);
    t.after(() => store.close());
    assert.equal(store.find('bob'), undefined);

    const reloaded = nextReload();
    writeFileSync(path, `users:\n${userBlock('alice')}${userBlock('bob')}`);
    assert.deepEqual(await reloaded, { ok: true, users: 2 });
    assert.ok(store.find('bob'));
    assert.equal(store.size, 2);
  });

  test('an invalid edit keeps the old users and logs the file, line and reason', async (t) => {
    const { dir, cleanup } = tempDir();
    t.after(cleanup);
    const path = join(dir, 'users.yaml');
    writeFileSync(path, `users:\n${userBlock('alice')}`);
    const log = capturingLogger();
    const { store, nextReload } = await openWatched(path, log.logger);
    t.after(() => store.close());

    const reloaded = nextReload();
    writeFileSync(path, `users:\n${userBlock('alice')}${userBlock('bob')}    grups: [staff]\n`);
    const outcome = await reloaded;
    assert.equal(outcome.ok, false);
    assert.ok(store.find('alice'));
    assert.equal(store.find('bob'), undefined);
    assert.equal(store.size, 1);

    const error = log.records.find((r) => r.level === 'error');
    assert.ok(error, 'an error line was logged');
    assert.equal(error.file, path);
    assert.equal(error.line, 6);
    assert.equal(error.reason, 'users.bob.grups: unknown key');
    assert.match(error.msg, new RegExp(`${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is invalid at line 6`));
    assert.doesNotMatch(log.text(), /\$2y\$/);

    // Fixing the file is picked up as well.
    const fixed = nextReload();
    writeFileSync(path, `users:\n${userBlock('alice')}${userBlock('bob')}    groups: [staff]\n`);
    assert.equal((await fixed).ok, true);
    assert.deepEqual(store.find('bob')?.user.groups, ['staff']);
  });

  test('reload() re-reads on demand and reports whether it could', async (t) => {
    const { dir, cleanup } = tempDir();
    t.after(cleanup);
    const path = join(dir, 'users.yaml');
    writeFileSync(path, `users:\n${userBlock('alice')}`);
    const { store } = await UserStore.open({ path, logger: silentLogger(), watch: false });

    writeFileSync(path, `users:\n${userBlock('carol')}`);
    assert.equal(store.reload(), true);
    assert.ok(store.find('carol'));
    assert.equal(store.find('alice'), undefined);

    writeFileSync(path, 'users: [carol]\n');
    assert.equal(store.reload(), false);
    assert.ok(store.find('carol'));
  });

  test('a deleted users file keeps the users loaded before', async (t) => {
    const { dir, cleanup } = tempDir();
    t.after(cleanup);
    const path = join(dir, 'users.yaml');
    writeFileSync(path, `users:\n${userBlock('alice')}`);
    const log = capturingLogger();
    const { store } = await UserStore.open({ path, logger: log.logger, watch: false });
    cleanup();
    assert.equal(store.reload(), false);
    assert.ok(store.find('alice'));
    assert.match(String(log.records.find((r) => r.level === 'error')?.reason), /does not exist/);
  });
});
