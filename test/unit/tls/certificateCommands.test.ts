import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isPosternError } from '../../../src/util/errors.js';
import { describeCertificate } from '../../../src/tls/certificateInfo.js';
import { formatCertificateInfo, generateCertificateCommand, showCertificateCommand } from '../../../src/cli/certCommand.js';
import { tempDir } from './fixtures.js';

describe('postern cert generate', () => {
  test('writes a pair for the configured host name with the requested validity', async (t) => {
    const dir = await tempDir(t);
    const certPath = join(dir, 'certs', 'tls.crt');
    const keyPath = join(dir, 'certs', 'tls.key');
    const now = new Date('2026-05-01T00:00:00Z');
    const info = await generateCertificateCommand({ certPath, keyPath, hostname: 'relay.example.com', force: false, days: 90, now });
    assert.equal(describeCertificate(await readFile(certPath)).fingerprint256, info.fingerprint256);
    assert.ok(info.altNames.includes('DNS:relay.example.com'));
    assert.equal(info.notAfter.toISOString(), '2026-07-30T00:00:00.000Z');
  });

  test('refuses to overwrite an existing file without --force, naming it, and leaves it untouched', async (t) => {
    const dir = await tempDir(t);
    const certPath = join(dir, 'tls.crt');
    const keyPath = join(dir, 'tls.key');
    await writeFile(keyPath, 'an operator key\n');
    await assert.rejects(
      generateCertificateCommand({ certPath, keyPath, hostname: 'relay.example.com', force: false, days: 365 }),
      (err) => {
        assert.ok(isPosternError(err, 'TLS_MATERIAL_INVALID'));
        assert.equal(err.message, `Refusing to overwrite existing TLS material: ${keyPath} already exists (pass --force to replace it)`);
        return true;
      },
    );
    assert.equal(await readFile(keyPath, 'utf8'), 'an operator key\n');
  });

  test('replaces existing files with --force', async (t) => {
    const dir = await tempDir(t);
    const certPath = join(dir, 'tls.crt');
    const keyPath = join(dir, 'tls.key');
    const first = await generateCertificateCommand({ certPath, keyPath, hostname: 'one.example', force: false, days: 365 });
    const second = await generateCertificateCommand({ certPath, keyPath, hostname: 'two.example', force: true, days: 365 });
    assert.notEqual(second.fingerprint256, first.fingerprint256);
    assert.equal(describeCertificate(await readFile(certPath)).fingerprint256, second.fingerprint256);
  });
});

describe('postern cert show', () => {
  test('describes the certificate on disk, and the summary names its fingerprint and host names', async (t) => {
    const dir = await tempDir(t);
    const certPath = join(dir, 'tls.crt');
    const written = await generateCertificateCommand({ certPath, keyPath: join(dir, 'tls.key'), hostname: 'relay.example.com', force: false, days: 365 });
    const shown = showCertificateCommand({ certPath });
    assert.deepEqual(shown, written);
    const text = formatCertificateInfo(shown);
    assert.match(text, new RegExp(`SHA-256: +${written.fingerprint256}`));
    assert.match(text, /names: +DNS:relay\.example\.com, DNS:localhost, IP:127\.0\.0\.1, IP:::1/);
  });

  test('fails naming the path when the certificate does not exist', async (t) => {
    const certPath = join(await tempDir(t), 'tls.crt');
    assert.throws(() => showCertificateCommand({ certPath }), {
      name: 'PosternError',
      message: `Cannot read TLS certificate: ${certPath} does not exist`,
    });
  });
});
