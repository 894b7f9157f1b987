import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { generateSelfSigned } from '../../src/tls/selfSigned.js';
import { ALICE, prepareGatewayDir, startTestGateway } from '../helpers/gateway.js';
import { SmtpTestClient, authenticatedClient } from '../helpers/smtpClient.js';
import { freePort } from '../helpers/ports.js';

async function presentedFingerprint(port: number, implicitTls: boolean): Promise<string> {
  const client = await SmtpTestClient.connect(port, { implicitTls });
  await client.greeting();
  if (!implicitTls) {
    await client.ehlo();
    await client.startTls();
  }
  const fingerprint = client.peerFingerprint!;
  await client.quit();
  return fingerprint;
}

describe('TLS certificates', () => {
  test('a self-signed certificate is generated on first start, presented on both listeners, and reused on the second start', async () => {
    const prepared = await prepareGatewayDir({ upstreamPort: await freePort() });
    const certFile = join(prepared.dir, 'certs', 'tls.crt');
    const keyFile = join(prepared.dir, 'certs', 'tls.key');

    const first = await startTestGateway({ upstreamPort: 0, dir: prepared });
    const generated = new X509Certificate(await readFile(certFile));
    assert.equal((await stat(keyFile)).mode & 0o777, 0o600, 'the key is readable by its owner only');
    assert.match(generated.subjectAltName ?? '', /DNS:postern\.test/);
    assert.equal(await presentedFingerprint(first.submissionPort, false), generated.fingerprint256);
    assert.equal(await presentedFingerprint(first.submissionsPort, true), generated.fingerprint256);
    await first.stop();

    const second = await startTestGateway({ upstreamPort: 0, dir: prepared });
    try {
      assert.equal(new X509Certificate(await readFile(certFile)).fingerprint256, generated.fingerprint256, 'the files were not rewritten');
      assert.equal(await presentedFingerprint(second.submissionsPort, true), generated.fingerprint256);
    } finally {
      await second.dispose();
    }
  });

  test('replacing the certificate files makes new connections present the new certificate without dropping open sessions', async () => {
    const postern = await startTestGateway({ upstreamPort: await freePort() });
    try {
      const original = await presentedFingerprint(postern.submissionsPort, true);
      const open = await authenticatedClient(postern.submissionPort, ALICE);

      // Replace both files the way an operator (or cert-manager) does: write aside, rename over.
      const next = generateSelfSigned({ hostname: 'rotated.postern.test' });
      const certFile = join(postern.dir, 'certs', 'tls.crt');
      const keyFile = join(postern.dir, 'certs', 'tls.key');
      await writeFile(`${keyFile}.new`, next.keyPem, { mode: 0o600 });
      await writeFile(`${certFile}.new`, next.certPem);
      await rename(`${keyFile}.new`, keyFile);
      await rename(`${certFile}.new`, certFile);
      const expected = new X509Certificate(next.certPem).fingerprint256;

      const deadline = Date.now() + 10_000;
      let seen = original;
      while (seen !== expected && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        seen = await presentedFingerprint(postern.submissionsPort, true);
      }
      assert.equal(seen, expected, 'new connections present the new certificate');
      assert.equal(await presentedFingerprint(postern.submissionPort, false), expected, 'on the STARTTLS listener too');

      assert.equal((await open.command('NOOP')).code, 250, 'the session opened before the change still works');
      assert.equal((await open.command('MAIL FROM:<alice@example.com>')).code, 250);
      await open.quit();
    } finally {
      await postern.dispose();
    }
  });
});
