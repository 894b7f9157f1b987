import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isPosternError } from '../../../src/util/errors.js';
import { silentLogger } from '../../../src/util/logger.js';
import { CertificateStore } from '../../../src/tls/certificateStore.js';
import { generateSelfSigned, writeSelfSigned } from '../../../src/tls/selfSigned.js';
import { capturingLogger, fastWatch, nextChange, tempDir } from './fixtures.js';

async function pairIn(dir: string, hostname: string) {
  const certPath = join(dir, 'tls.crt');
  const keyPath = join(dir, 'tls.key');
  const info = await writeSelfSigned(certPath, keyPath, { hostname });
  return { certPath, keyPath, info };
}

describe('TLS material that does not validate', () => {
  test('a key that does not belong to the certificate fails the open, naming both files', async (t) => {
    const { certPath, keyPath } = await pairIn(await tempDir(t), 'relay.example.com');
    await writeFile(keyPath, generateSelfSigned({ hostname: 'other.example' }).keyPem);
    await assert.rejects(
      CertificateStore.open({ certPath, keyPath, selfSigned: true, hostname: 'relay.example.com', logger: silentLogger(), watch: false }),
      (err) => {
        assert.ok(isPosternError(err, 'TLS_MATERIAL_INVALID'));
        assert.ok(err.message.startsWith(`TLS key ${keyPath} does not match the certificate ${certPath}`), err.message);
        return true;
      },
    );
  });

  test('a certificate file that is not PEM fails the open, naming the file', async (t) => {
    const { certPath, keyPath } = await pairIn(await tempDir(t), 'relay.example.com');
    await writeFile(certPath, 'this is not a certificate\n');
    await assert.rejects(
      CertificateStore.open({ certPath, keyPath, selfSigned: true, hostname: 'relay.example.com', logger: silentLogger(), watch: false }),
      (err) => isPosternError(err, 'TLS_MATERIAL_INVALID') && err.message.startsWith(`Cannot use TLS certificate: ${certPath} is not a PEM certificate`),
    );
  });

  test('a reload that finds a mismatched key keeps the current material and logs an error', async (t) => {
    const { certPath, keyPath, info } = await pairIn(await tempDir(t), 'relay.example.com');
    const { logger, lines } = capturingLogger();
    const store = await CertificateStore.open({ certPath, keyPath, selfSigned: true, hostname: 'relay.example.com', logger, watch: false });
    const before = store.material;
    let notified = 0;
    store.onChange(() => notified++);

    await writeFile(keyPath, generateSelfSigned({ hostname: 'other.example' }).keyPem);
    assert.equal(store.reload(), false);

    assert.equal(store.info.fingerprint256, info.fingerprint256);
    assert.equal(store.material, before);
    assert.equal(notified, 0);
    const error = lines.find((l) => l.level === 'error');
    assert.equal(error?.msg, 'TLS certificate reload failed; keeping the current certificate');
    assert.match(String((error?.err as { message?: string } | undefined)?.message), /does not match the certificate/);
  });

  test('a reload that finds a half-written certificate keeps the current material', async (t) => {
    const { certPath, keyPath, info } = await pairIn(await tempDir(t), 'relay.example.com');
    const store = await CertificateStore.open({ certPath, keyPath, selfSigned: true, hostname: 'relay.example.com', logger: silentLogger(), watch: false });
    const pem = await readFile(certPath, 'utf8');
    await writeFile(certPath, pem.slice(0, pem.length / 2));
    assert.equal(store.reload(), false);
    assert.equal(store.info.fingerprint256, info.fingerprint256);
  });

  test('a watched pair that is overwritten in two steps is taken only once both halves match', async (t) => {
    const dir = await tempDir(t);
    const { certPath, keyPath, info } = await pairIn(dir, 'relay.example.com');
    const { logger, lines } = capturingLogger();
    const store = await CertificateStore.open({
      certPath,
      keyPath,
      selfSigned: true,
      hostname: 'relay.example.com',
      logger,
      watchOptions: fastWatch,
    });
    t.after(() => store.close());
    const next = generateSelfSigned({ hostname: 'next.example' });
    const changed = nextChange(store);

    // The key alone first: the watcher sees a mismatched pair and must keep the old one.
    await writeFile(keyPath, next.keyPem);
    await waitFor(() => lines.some((l) => l.level === 'error'));
    assert.equal(store.info.fingerprint256, info.fingerprint256);

    await writeFile(certPath, next.certPem);
    const changedTo = await changed;
    assert.ok(changedTo.altNames.includes('DNS:next.example'));
    assert.equal(store.info.fingerprint256, changedTo.fingerprint256);
  });
});

/** Polls a condition on the event loop; fails with a clear message instead of hanging. */
async function waitFor(condition: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
