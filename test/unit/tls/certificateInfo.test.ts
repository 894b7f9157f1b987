import { generateKeyPairSync } from 'node:crypto';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import forge from 'node-forge';
import { describeCertificate } from '../../../src/tls/certificateInfo.js';
import { generateSelfSigned } from '../../../src/tls/selfSigned.js';

/** A certificate with exactly the given alternative names, signed with forge. */
function certificateWithAltNames(altNames: object[]): string {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }) as string);
  cert.serialNumber = '01';
  cert.validity.notBefore = new Date('2026-01-01T00:00:00Z');
  cert.validity.notAfter = new Date('2027-01-01T00:00:00Z');
  cert.setSubject([{ name: 'commonName', value: 'names.example' }]);
  cert.setIssuer([{ name: 'commonName', value: 'names.example' }]);
  if (altNames.length > 0) cert.setExtensions([{ name: 'subjectAltName', altNames }]);
  cert.sign(forge.pki.privateKeyFromPem(privateKey.export({ type: 'pkcs8', format: 'pem' }) as string), forge.md.sha256.create());
  return forge.pki.certificateToPem(cert);
}

describe('describing a certificate', () => {
  test('gives the validity period, the subject on one line and the SHA-256 fingerprint', () => {
    const pem = certificateWithAltNames([]);
    const info = describeCertificate(pem);
    assert.equal(info.subject, 'CN=names.example');
    assert.equal(info.notBefore.toISOString(), '2026-01-01T00:00:00.000Z');
    assert.equal(info.notAfter.toISOString(), '2027-01-01T00:00:00.000Z');
    assert.match(info.fingerprint256, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    assert.deepEqual(info.altNames, []);
  });

  test('reads an alternative name that contains a comma as one name', () => {
    const pem = certificateWithAltNames([
      { type: 2, value: 'odd,name.example' },
      { type: 6, value: 'https://names.example/a,b' },
      { type: 7, ip: '2001:db8:0:0:0:0:0:1' },
    ]);
    assert.deepEqual(describeCertificate(pem).altNames, [
      'DNS:odd,name.example',
      'URI:https://names.example/a,b',
      'IP:2001:db8::1',
    ]);
  });

  test('describes the first certificate of a chain file', () => {
    const leaf = generateSelfSigned({ hostname: 'leaf.example' }).certPem;
    const other = generateSelfSigned({ hostname: 'other.example' }).certPem;
    assert.equal(describeCertificate(leaf + other).fingerprint256, describeCertificate(leaf).fingerprint256);
  });

  test('throws for text that is not a certificate', () => {
    assert.throws(() => describeCertificate('-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n'));
  });
});
