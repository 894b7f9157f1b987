import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import forge from 'node-forge';
import { describeCertificate } from '../../../src/tls/certificateInfo.js';
import { generateSelfSigned, writeSelfSigned } from '../../../src/tls/selfSigned.js';
import { tempDir } from './fixtures.js';

const DAY_MS = 86_400_000;
const SHA256_WITH_RSA = '1.2.840.113549.1.1.11';
const ID_KP_SERVER_AUTH = '1.3.6.1.5.5.7.3.1';

describe('a self-signed certificate', () => {
  test('names the configured host name and localhost as DNS names and 127.0.0.1 and ::1 as IP addresses', () => {
    const { certPem } = generateSelfSigned({ hostname: 'relay.example.com' });
    const info = describeCertificate(certPem);
    assert.deepEqual(info.altNames, ['DNS:relay.example.com', 'DNS:localhost', 'IP:127.0.0.1', 'IP:::1']);
    assert.match(info.subject, /CN=relay\.example\.com/);
    const x509 = new X509Certificate(certPem);
    assert.equal(x509.checkHost('relay.example.com'), 'relay.example.com');
    assert.equal(x509.checkIP('::1'), '::1');
  });

  test('puts a host name that is an IP address among the IP addresses, not the DNS names', () => {
    const { certPem } = generateSelfSigned({ hostname: '192.0.2.10' });
    assert.deepEqual(describeCertificate(certPem).altNames, ['DNS:localhost', 'IP:192.0.2.10', 'IP:127.0.0.1', 'IP:::1']);
  });

  test('is valid for one year from the moment it is issued by default', () => {
    const now = new Date('2026-03-01T12:00:00Z');
    const info = describeCertificate(generateSelfSigned({ hostname: 'relay.example.com', now }).certPem);
    assert.equal(info.notAfter.getTime(), now.getTime() + 365 * DAY_MS);
    // Backdated by a few minutes for clients with a slow clock, never by more than an hour.
    assert.ok(info.notBefore.getTime() <= now.getTime());
    assert.ok(info.notBefore.getTime() > now.getTime() - 3_600_000);
  });

  test('is valid for the number of days asked for', () => {
    const now = new Date('2026-03-01T12:00:00Z');
    const info = describeCertificate(generateSelfSigned({ hostname: 'relay.example.com', now, days: 30 }).certPem);
    assert.equal(info.notAfter.getTime(), now.getTime() + 30 * DAY_MS);
  });

  test('refuses a validity that is not a positive whole number of days', () => {
    for (const days of [0, -1, 1.5, Number.NaN]) {
      assert.throws(() => generateSelfSigned({ hostname: 'relay.example.com', days }), RangeError);
    }
  });

  test('has an RSA 2048 key, a SHA-256 signature and the serverAuth extended key usage', () => {
    const { certPem } = generateSelfSigned({ hostname: 'relay.example.com' });
    const x509 = new X509Certificate(certPem);
    assert.equal(x509.publicKey.asymmetricKeyType, 'rsa');
    assert.equal(x509.publicKey.asymmetricKeyDetails?.modulusLength, 2048);
    assert.deepEqual(x509.keyUsage, [ID_KP_SERVER_AUTH]);
    assert.equal(x509.ca, false);
    assert.ok(x509.verify(x509.publicKey), 'the certificate is signed by its own key');
    const parsed = forge.pki.certificateFromPem(certPem);
    assert.equal(parsed.siginfo.algorithmOid, SHA256_WITH_RSA);
  });

  test('has a random positive serial number', () => {
    const serials = [1, 2, 3].map(() => new X509Certificate(generateSelfSigned({ hostname: 'a.example' }).certPem).serialNumber);
    assert.equal(new Set(serials).size, 3);
    for (const serial of serials) {
      assert.match(serial, /^[0-9A-F]{32}$/, 'sixteen octets, minimally encoded');
      assert.ok(Number.parseInt(serial[0]!, 16) < 8, `serial ${serial} would be negative in DER`);
    }
  });

  test('comes with the private key that belongs to it', () => {
    const { certPem, keyPem } = generateSelfSigned({ hostname: 'relay.example.com' });
    assert.match(keyPem, /^-----BEGIN PRIVATE KEY-----/);
    assert.ok(new X509Certificate(certPem).checkPrivateKey(createPrivateKey(keyPem)));
  });
});

describe('writing a self-signed certificate', () => {
  test('creates the parent directories, writes the key with mode 0600 and the certificate with 0644', async (t) => {
    const dir = await tempDir(t);
    const certPath = join(dir, 'certs', 'nested', 'tls.crt');
    const keyPath = join(dir, 'private', 'tls.key');
    const info = await writeSelfSigned(certPath, keyPath, { hostname: 'relay.example.com' });

    assert.equal((await stat(keyPath)).mode & 0o777, 0o600);
    assert.equal((await stat(certPath)).mode & 0o777, 0o644);
    const cert = new X509Certificate(await readFile(certPath));
    assert.equal(cert.fingerprint256, info.fingerprint256);
    assert.ok(cert.checkPrivateKey(createPrivateKey(await readFile(keyPath))));
  });

  test('sets the modes even under a umask that would strip them', async (t) => {
    const dir = await tempDir(t);
    const previous = process.umask(0o077);
    try {
      await writeSelfSigned(join(dir, 'tls.crt'), join(dir, 'tls.key'), { hostname: 'relay.example.com' });
    } finally {
      process.umask(previous);
    }
    assert.equal((await stat(join(dir, 'tls.crt'))).mode & 0o777, 0o644);
    assert.equal((await stat(join(dir, 'tls.key'))).mode & 0o777, 0o600);
  });

  test('replaces existing files and leaves no temporary files behind', async (t) => {
    const dir = await tempDir(t);
    const certPath = join(dir, 'tls.crt');
    const keyPath = join(dir, 'tls.key');
    const first = await writeSelfSigned(certPath, keyPath, { hostname: 'one.example' });
    const second = await writeSelfSigned(certPath, keyPath, { hostname: 'two.example' });
    assert.notEqual(first.fingerprint256, second.fingerprint256);
    assert.equal(describeCertificate(await readFile(certPath)).fingerprint256, second.fingerprint256);
    assert.deepEqual((await readdir(dir)).sort(), ['tls.crt', 'tls.key']);
  });
});
