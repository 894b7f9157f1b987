import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import bcrypt from 'bcryptjs';
import { hashPassword, isSupportedHash, verifyAgainstDummy, verifyPassword } from '../../../src/auth/passwordHash.js';

describe('password hashes', () => {
  test('a scrypt hash verifies its own password and not another one', async () => {
    const hash = await hashPassword('correct horse battery staple');
    assert.match(hash, /^\$scrypt\$ln=15,r=8,p=1\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/);
    assert.equal(await verifyPassword('correct horse battery staple', hash), true);
    assert.equal(await verifyPassword('correct horse battery stapler', hash), false);
    assert.equal(await verifyPassword('', hash), false);
  });

  test('two hashes of the same password differ because each has its own salt', async () => {
    const [first, second] = await Promise.all([hashPassword('same password'), hashPassword('same password')]);
    assert.notEqual(first, second);
  });

  test('non-ASCII passwords round-trip as their UTF-8 bytes', async () => {
    const hash = await hashPassword('pässwörd-密码');
    assert.equal(await verifyPassword('pässwörd-密码', hash), true);
    assert.equal(await verifyPassword('passwörd-密码', hash), false);
  });

  test('a bcrypt hash with the $2y$ prefix that htpasswd -B writes verifies', async () => {
    const hash2b = await bcrypt.hash('htpasswd secret', 5);
    const hash2y = hash2b.replace(/^\$2b\$/, '$2y$');
    assert.match(hash2y, /^\$2y\$05\$/);
    assert.equal(await verifyPassword('htpasswd secret', hash2y), true);
    assert.equal(await verifyPassword('htpasswd Secret', hash2y), false);
    assert.equal(await verifyPassword('htpasswd secret', hash2b.replace(/^\$2b\$/, '$2a$')), true);
  });

  test('a garbage or unknown hash is a failed verification, never an exception', async () => {
    const garbage = [
      '',
      'plaintext-password',
      '$scrypt$',
      '$scrypt$ln=15,r=8,p=1$not base64!$AAAA',
      '$scrypt$ln=15,r=8,p=1$c2FsdHNhbHRzYWx0$c2hvcnQ', // key shorter than 16 bytes
      '$scrypt$ln=60,r=8,p=1$c2FsdHNhbHRzYWx0c2FsdA$' + 'A'.repeat(43), // absurd cost
      '$2y$05$tooShort',
      '$2y$31$' + 'a'.repeat(53), // a cost that would spin for days
      '$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA',
      '{SSHA}abcdef',
    ];
    for (const hash of garbage) {
      assert.equal(await verifyPassword('anything', hash), false, `hash ${JSON.stringify(hash)}`);
      assert.equal(isSupportedHash(hash), false, `hash ${JSON.stringify(hash)}`);
    }
  });

  test('isSupportedHash accepts what hashPassword and htpasswd write', async () => {
    assert.equal(isSupportedHash(await hashPassword('x')), true);
    assert.equal(isSupportedHash((await bcrypt.hash('x', 4)).replace(/^\$2b\$/, '$2y$')), true);
  });

  test('bcrypt hashes of cost 12 are accepted and of cost 13 or more are refused as unsupported', async () => {
    const fake = (cost: string) => `$2y$${cost}$${'a'.repeat(53)}`;
    assert.equal(isSupportedHash(fake('12')), true);
    for (const cost of ['13', '17']) assert.equal(isSupportedHash(fake(cost)), false, `cost ${cost}`);
    // A real cost-13 hash is not verified even with its own password: checking it would hold
    // the main thread for about a second.
    const costly = await bcrypt.hash('expensive secret', 13);
    assert.equal(await verifyPassword('expensive secret', costly), false);
  });

  test('the dummy verification used for unknown users always answers false', async () => {
    assert.equal(await verifyAgainstDummy('any password'), false);
    assert.equal(await verifyAgainstDummy(''), false);
  });
});
