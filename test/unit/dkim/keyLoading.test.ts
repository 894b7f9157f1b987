import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readDkimKey } from '../../../src/dkim/dkimKeys.js';
import { isPosternError } from '../../../src/util/errors.js';
import { keyConfig, keyDirectory, newKeyPem, writeKeyFile } from '../../helpers/dkimFixtures.js';

describe('reading a DKIM key file', () => {
  let dir: string;
  let remove: () => Promise<void>;
  before(async () => ({ dir, remove } = await keyDirectory()));
  after(() => remove());

  test('a 2048-bit RSA key is read as an RSA key with its size', async () => {
    const key = readDkimKey(keyConfig('Example.COM', 's1', await writeKeyFile(dir, 'rsa.key', newKeyPem('rsa'))));
    assert.equal(key.algorithm, 'rsa');
    assert.equal(key.bits, 2048);
    assert.equal(key.domain, 'example.com');
    assert.match(key.publicKeyValue, /^MIIBIjAN/);
  });

  test('an Ed25519 key is read as an Ed25519 key', async () => {
    const key = readDkimKey(keyConfig('example.com', 'e1', await writeKeyFile(dir, 'ed.key', newKeyPem('ed25519'))));
    assert.equal(key.algorithm, 'ed25519');
    assert.equal(key.bits, undefined);
    assert.equal(Buffer.from(key.publicKeyValue, 'base64').length, 32);
  });

  test('an RSA key shorter than 2048 bits is refused, naming the file and the size', async () => {
    const path = await writeKeyFile(dir, 'short.key', newKeyPem('rsa', 1024));
    assert.throws(
      () => readDkimKey(keyConfig('example.com', 's1', path)),
      (err: unknown) => isPosternError(err, 'CONFIG_INVALID') && err.message.includes(path) && err.message.includes('1024-bit'),
    );
  });

  test('a key of another type (EC P-256) is refused', async () => {
    const path = await writeKeyFile(dir, 'ec.key', newKeyPem('ec'));
    assert.throws(() => readDkimKey(keyConfig('example.com', 's1', path)), /ec key; DKIM signs with RSA or Ed25519/);
  });

  test('a file that is not a PEM private key is refused', async () => {
    const path = await writeKeyFile(dir, 'junk.key', 'not a key\n');
    assert.throws(() => readDkimKey(keyConfig('example.com', 's1', path)), /is not a PEM private key/);
  });

  test('a missing file is reported as missing, with the record it was for', () => {
    const path = join(dir, 'absent.key');
    assert.throws(() => readDkimKey(keyConfig('example.com', 's1', path)), new RegExp(`s1\\._domainkey\\.example\\.com: ${path} does not exist`));
  });
});
