import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isPosternError } from '../../../src/util/errors.js';
import { silentLogger } from '../../../src/util/logger.js';
import { CertificateStore } from '../../../src/tls/certificateStore.js';
import { writeSelfSigned } from '../../../src/tls/selfSigned.js';
import { tempDir } from './fixtures.js';

function open(certPath: string, keyPath: string, selfSigned = true): Promise<CertificateStore> {
  return CertificateStore.open({ certPath, keyPath, selfSigned, hostname: 'relay.example.com', logger: silentLogger(), watch: false });
}

describe('opening the certificate store with missing files', () => {
  test('fails naming the key when the certificate exists without it, and generates nothing', async (t) => {
    const dir = await tempDir(t);
    const certPath = join(dir, 'tls.crt');
    const keyPath = join(dir, 'tls.key');
    await writeSelfSigned(certPath, keyPath, { hostname: 'relay.example.com' });
    await rm(keyPath);
    await assert.rejects(open(certPath, keyPath), (err) => {
      assert.ok(isPosternError(err, 'TLS_MATERIAL_INVALID'));
      assert.ok(err.message.startsWith(`Cannot read TLS key: ${keyPath} does not exist`), err.message);
      return true;
    });
    assert.equal(existsSync(keyPath), false);
  });

  test('fails naming the certificate when the key exists without it, and generates nothing', async (t) => {
    const dir = await tempDir(t);
    const certPath = join(dir, 'tls.crt');
    const keyPath = join(dir, 'tls.key');
    await writeSelfSigned(certPath, keyPath, { hostname: 'relay.example.com' });
    await rm(certPath);
    await assert.rejects(open(certPath, keyPath), (err) => {
      assert.ok(isPosternError(err, 'TLS_MATERIAL_INVALID'));
      assert.ok(err.message.startsWith(`Cannot read TLS certificate: ${certPath} does not exist`), err.message);
      return true;
    });
    assert.equal(existsSync(certPath), false);
  });

  test('fails naming the certificate when neither file exists and self-signed generation is off', async (t) => {
    const dir = await tempDir(t);
    const certPath = join(dir, 'tls.crt');
    const keyPath = join(dir, 'tls.key');
    await assert.rejects(open(certPath, keyPath, false), (err) => {
      assert.ok(isPosternError(err, 'TLS_MATERIAL_INVALID'));
      assert.ok(err.message.startsWith(`Cannot read TLS certificate: ${certPath} does not exist`), err.message);
      assert.match(err.message, /tls\.selfSigned/);
      return true;
    });
    assert.equal(existsSync(certPath), false);
    assert.equal(existsSync(keyPath), false);
  });
});
