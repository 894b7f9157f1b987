import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../../src/util/clock.js';
import { CertificateStore } from '../../../src/tls/certificateStore.js';
import { writeSelfSigned } from '../../../src/tls/selfSigned.js';
import { capturingLogger, tempDir } from './fixtures.js';

describe('opening the certificate store', () => {
  test('generates a self-signed pair on first open and reuses it on the next', async (t) => {
    const dir = await tempDir(t);
    const certPath = join(dir, 'certs', 'tls.crt');
    const keyPath = join(dir, 'certs', 'tls.key');
    const first = capturingLogger();
    const opts = { certPath, keyPath, selfSigned: true, hostname: 'relay.example.com', watch: false };

    const store = await CertificateStore.open({ ...opts, logger: first.logger });
    assert.ok(store.info.altNames.includes('DNS:relay.example.com'));
    assert.equal((await stat(keyPath)).mode & 0o777, 0o600);
    const generatedLine = first.lines.find((l) => l.msg.startsWith('Generated a self-signed TLS certificate'));
    assert.equal(generatedLine?.fingerprint256, store.info.fingerprint256);
    const loaded = first.lines.find((l) => l.msg === 'TLS certificate loaded');
    assert.equal(loaded?.generated, true);
    assert.equal(loaded?.fingerprint256, store.info.fingerprint256);
    store.close();

    const second = capturingLogger();
    const reopened = await CertificateStore.open({ ...opts, logger: second.logger });
    assert.equal(reopened.info.fingerprint256, store.info.fingerprint256);
    assert.ok(reopened.material.key.equals(store.material.key));
    assert.equal(second.lines.find((l) => l.msg === 'TLS certificate loaded')?.generated, false);
    assert.equal(second.lines.some((l) => l.msg.startsWith('Generated')), false);
    reopened.close();
  });

  test('loads an existing pair as it is when self-signed generation is off', async (t) => {
    const dir = await tempDir(t);
    const certPath = join(dir, 'tls.crt');
    const keyPath = join(dir, 'tls.key');
    const written = await writeSelfSigned(certPath, keyPath, { hostname: 'operator.example' });
    const { logger } = capturingLogger();
    const store = await CertificateStore.open({ certPath, keyPath, selfSigned: false, hostname: 'relay.example.com', logger, watch: false });
    assert.equal(store.info.fingerprint256, written.fingerprint256);
    assert.match(store.info.subject, /CN=operator\.example/);
  });

  test('warns when the loaded certificate has expired, and still serves it', async (t) => {
    const dir = await tempDir(t);
    const certPath = join(dir, 'tls.crt');
    const keyPath = join(dir, 'tls.key');
    await writeSelfSigned(certPath, keyPath, { hostname: 'relay.example.com', now: new Date('2020-01-01T00:00:00Z'), days: 30 });
    const { logger, lines } = capturingLogger();
    const store = await CertificateStore.open({
      certPath,
      keyPath,
      selfSigned: true,
      hostname: 'relay.example.com',
      logger,
      watch: false,
      clock: new ManualClock(Date.UTC(2026, 0, 1)),
    });
    assert.ok(store.material.cert.length > 0);
    const warning = lines.find((l) => l.msg === 'TLS certificate has expired');
    assert.equal(warning?.level, 'warn');
  });
});
