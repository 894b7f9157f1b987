import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { verifyPassword } from '../../../src/auth/passwordHash.js';
import { UserStore } from '../../../src/auth/userStore.js';
import { isPosternError } from '../../../src/util/errors.js';
import { silentLogger } from '../../../src/util/logger.js';
import { capturingLogger, tempDir } from './support.js';

describe('user store first start', () => {
  test('a missing users file is created 0600 with postmaster and a random 24-character password that verifies', async (t) => {
    const { dir, cleanup } = tempDir();
    t.after(cleanup);
    const path = join(dir, 'config', 'nested', 'users.yaml');
    const log = capturingLogger();

    const { store, createdPassword } = await UserStore.open({ path, logger: log.logger, watch: false });
    t.after(() => store.close());

    assert.ok(createdPassword);
    assert.equal(createdPassword.length, 24);
    assert.match(createdPassword, /^[A-Za-z0-9_-]{24}$/);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(store.size, 1);
    const postmaster = store.find('postmaster');
    assert.ok(postmaster);
    assert.deepEqual(postmaster.user, { name: 'postmaster', senders: [], groups: ['admin'] });
    assert.equal(await verifyPassword(createdPassword, postmaster.passwordHash), true);
    assert.match(readFileSync(path, 'utf8'), /postern user add NAME/);
    // Neither the password nor its hash reached the log.
    assert.doesNotMatch(log.text(), new RegExp(createdPassword));
    assert.doesNotMatch(log.text(), /\$scrypt\$/);
    // The store says what it created, and leaves the password to its caller.
    const created = log.records.find((record) => record.msg.startsWith('created the users file'));
    assert.ok(created, log.text());
    assert.doesNotMatch(created.msg, /password/i);
    assert.equal(created.file, path);
  });

  test('the first postmaster may send as the initial senders it was given', async (t) => {
    const { dir, cleanup } = tempDir();
    t.after(cleanup);
    const path = join(dir, 'users.yaml');
    const { store, createdPassword } = await UserStore.open({
      path,
      logger: silentLogger(),
      watch: false,
      initialSenders: ['postmaster@mail.example.com'],
    });
    assert.ok(createdPassword);
    assert.deepEqual(store.find('postmaster')?.user, {
      name: 'postmaster',
      senders: ['postmaster@mail.example.com'],
      groups: ['admin'],
    });
    assert.match(readFileSync(path, 'utf8'), /senders: \[postmaster@mail\.example\.com\]/);
  });

  test('an initial sender that is not a valid address or pattern is an error and no file is created', async (t) => {
    const { dir, cleanup } = tempDir();
    t.after(cleanup);
    const path = join(dir, 'users.yaml');
    await assert.rejects(
      UserStore.open({ path, logger: silentLogger(), watch: false, initialSenders: ['not an address'] }),
      (err: unknown) => isPosternError(err, 'USERS_FILE_INVALID') && /not an address/.test(err.message),
    );
    assert.throws(() => statSync(path), { code: 'ENOENT' });
  });

  test('two first starts get different passwords', async (t) => {
    const { dir, cleanup } = tempDir();
    t.after(cleanup);
    const first = await UserStore.open({ path: join(dir, 'a.yaml'), logger: silentLogger(), watch: false });
    const second = await UserStore.open({ path: join(dir, 'b.yaml'), logger: silentLogger(), watch: false });
    assert.notEqual(first.createdPassword, second.createdPassword);
  });

  test('an existing users file is used as it is and no password is created', async (t) => {
    const { dir, cleanup } = tempDir();
    t.after(cleanup);
    const path = join(dir, 'users.yaml');
    const text = `users:\n  alice:\n    password: "$2y$05$${'a'.repeat(53)}"\n`;
    writeFileSync(path, text, { mode: 0o600 });

    const { store, createdPassword } = await UserStore.open({ path, logger: silentLogger(), watch: false });
    assert.equal(createdPassword, undefined);
    assert.equal(store.find('postmaster'), undefined);
    assert.ok(store.find('alice'));
    assert.equal(readFileSync(path, 'utf8'), text);
  });

  test('user names are looked up case-sensitively', async (t) => {
    const { dir, cleanup } = tempDir();
    t.after(cleanup);
    const path = join(dir, 'users.yaml');
    writeFileSync(path, `users:\n  Alice:\n    password: "$2y$05$${'a'.repeat(53)}"\n`);
    const { store } = await UserStore.open({ path, logger: silentLogger(), watch: false });
    assert.ok(store.find('Alice'));
    assert.equal(store.find('alice'), undefined);
  });

  test('with createIfMissing false a missing file is an error naming it, and nothing is created', async (t) => {
    const { dir, cleanup } = tempDir();
    t.after(cleanup);
    const path = join(dir, 'users.yaml');
    await assert.rejects(UserStore.open({ path, logger: silentLogger(), watch: false, createIfMissing: false }), (err: unknown) => {
      assert.ok(isPosternError(err, 'USERS_FILE_INVALID'));
      assert.match(err.message, /users\.yaml/);
      assert.match(err.message, /does not exist/);
      return true;
    });
    assert.throws(() => statSync(path), { code: 'ENOENT' });
  });

  test('an invalid users file at start is an error, not an empty user list', async (t) => {
    const { dir, cleanup } = tempDir();
    t.after(cleanup);
    mkdirSync(join(dir, 'etc'));
    const path = join(dir, 'etc', 'users.yaml');
    writeFileSync(path, 'users:\n  alice:\n    pasword: x\n');
    await assert.rejects(UserStore.open({ path, logger: silentLogger(), watch: false }), /line 3: users\.alice\.pasword: unknown key/);
  });
});
