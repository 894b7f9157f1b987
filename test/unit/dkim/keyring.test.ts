import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { DkimKeyring, type DkimReloadOutcome } from '../../../src/dkim/dkimKeys.js';
import { silentLogger } from '../../../src/util/logger.js';
import { keyConfig, keyDirectory, newKeyPem, replaceKeyFile, writeKeyFile } from '../../helpers/dkimFixtures.js';

const logger = silentLogger();

describe('the DKIM keyring', () => {
  let dir: string;
  let remove: () => Promise<void>;
  let rsa1: string;
  let rsa2: string;
  let ed1: string;
  before(async () => {
    ({ dir, remove } = await keyDirectory());
    rsa1 = await writeKeyFile(dir, 'rsa1.key', newKeyPem('rsa'));
    rsa2 = await writeKeyFile(dir, 'rsa2.key', newKeyPem('rsa'));
    ed1 = await writeKeyFile(dir, 'ed1.key', newKeyPem('ed25519'));
  });
  after(() => remove());

  test('a domain with an active RSA and Ed25519 key signs with both, RSA first', () => {
    const keyring = new DkimKeyring({ keys: [keyConfig('example.com', 'e1', ed1), keyConfig('example.com', 'r1', rsa1)], logger, watch: false });
    assert.deepEqual(
      keyring.activeKeys('EXAMPLE.com').map((k) => [k.selector, k.algorithm]),
      [
        ['r1', 'rsa'],
        ['e1', 'ed25519'],
      ],
    );
  });

  test('an inactive key is kept but does not sign', () => {
    const keyring = new DkimKeyring({ keys: [keyConfig('example.com', 'old', rsa1, false), keyConfig('example.com', 'new', rsa2)], logger, watch: false });
    assert.deepEqual(keyring.activeKeys('example.com').map((k) => k.selector), ['new']);
    assert.equal(keyring.keys.length, 2);
    assert.equal(keyring.hasActiveKey('other.example'), false);
  });

  test('two active keys of one algorithm for one domain are refused', () => {
    assert.throws(
      () => new DkimKeyring({ keys: [keyConfig('example.com', 'a', rsa1), keyConfig('example.com', 'b', rsa2)], logger, watch: false }),
      /a and b of example\.com are both active rsa keys/,
    );
  });

  test('the same selector listed twice for a domain is refused', () => {
    assert.throws(
      () => new DkimKeyring({ keys: [keyConfig('example.com', 'a', rsa1, false), keyConfig('example.com', 'a', rsa2, false)], logger, watch: false }),
      /a\._domainkey\.example\.com is configured twice/,
    );
  });

  test('update() makes the newly active selector the one that signs', () => {
    const keyring = new DkimKeyring({ keys: [keyConfig('example.com', 'jan', rsa1), keyConfig('example.com', 'feb', rsa2, false)], logger, watch: false });
    keyring.update([keyConfig('example.com', 'jan', rsa1, false), keyConfig('example.com', 'feb', rsa2)]);
    assert.deepEqual(keyring.activeKeys('example.com').map((k) => k.selector), ['feb']);
  });

  test('update() with a key that cannot be read throws and keeps the running keys', () => {
    const keyring = new DkimKeyring({ keys: [keyConfig('example.com', 'jan', rsa1)], logger, watch: false });
    assert.throws(() => keyring.update([keyConfig('example.com', 'feb', `${dir}/missing.key`)]), /does not exist/);
    assert.deepEqual(keyring.activeKeys('example.com').map((k) => k.selector), ['jan']);
  });

  test('reload() picks up a replaced key file and keeps the old key when the new file is broken', async () => {
    const path = await writeKeyFile(dir, 'reload.key', newKeyPem('rsa'));
    const outcomes: DkimReloadOutcome[] = [];
    const keyring = new DkimKeyring({ keys: [keyConfig('example.com', 's1', path)], logger, watch: false, onReload: (o) => outcomes.push(o) });
    const first = keyring.activeKeys('example.com')[0]!.fingerprint;

    assert.equal(keyring.reload(), false, 'an unchanged file is no change');
    await replaceKeyFile(path, newKeyPem('ed25519'));
    assert.equal(keyring.reload(), true);
    const second = keyring.activeKeys('example.com')[0]!;
    assert.notEqual(second.fingerprint, first);
    assert.equal(second.algorithm, 'ed25519');

    await writeFile(path, 'broken');
    assert.equal(keyring.reload(), false);
    assert.equal(keyring.activeKeys('example.com')[0]!.fingerprint, second.fingerprint);
    assert.deepEqual(outcomes, [{ ok: true, changed: false }, { ok: true, changed: true }, { ok: false, changed: false }]);
  });

  test('a key file replaced on disk is re-read by the watcher without being asked', async () => {
    const path = await writeKeyFile(dir, 'watched.key', newKeyPem('rsa'));
    let changed!: () => void;
    const reloaded = new Promise<void>((resolve) => (changed = resolve));
    const keyring = new DkimKeyring({
      keys: [keyConfig('example.com', 's1', path)],
      logger,
      watchOptions: { debounceMs: 20, pollMs: 100 },
      onReload: (outcome) => {
        if (outcome.changed) changed();
      },
    });
    // The watcher's timers do not hold the process open (a gateway exits without closing it);
    // this one does, while the test waits.
    const keepAlive = setInterval(() => undefined, 1000);
    try {
      const before = keyring.activeKeys('example.com')[0]!.fingerprint;
      await replaceKeyFile(path, newKeyPem('rsa'));
      await reloaded;
      assert.notEqual(keyring.activeKeys('example.com')[0]!.fingerprint, before);
    } finally {
      clearInterval(keepAlive);
      keyring.close();
    }
  });
});
