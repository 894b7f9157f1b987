import { mkdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CertificateStore } from '../../../src/tls/certificateStore.js';
import { generateSelfSigned, writeSelfSigned } from '../../../src/tls/selfSigned.js';
import { capturingLogger, fastWatch, nextChange, tempDir } from './fixtures.js';

describe('certificate files replaced on disk', () => {
  test('a pair rewritten in place for another host name reaches change listeners without a manual reload', async (t) => {
    const dir = await tempDir(t);
    const certPath = join(dir, 'tls.crt');
    const keyPath = join(dir, 'tls.key');
    const { logger, lines } = capturingLogger();
    const store = await CertificateStore.open({ certPath, keyPath, selfSigned: true, hostname: 'before.example', logger, watchOptions: fastWatch });
    t.after(() => store.close());
    const before = store.info;
    const changed = nextChange(store);

    const written = await writeSelfSigned(certPath, keyPath, { hostname: 'after.example' });
    const after = await changed;

    assert.equal(after.fingerprint256, written.fingerprint256);
    assert.notEqual(after.fingerprint256, before.fingerprint256);
    assert.ok(after.altNames.includes('DNS:after.example'));
    assert.equal(store.info.fingerprint256, written.fingerprint256);
    const reloaded = lines.find((l) => l.msg === 'TLS certificate reloaded');
    assert.equal(reloaded?.previousFingerprint256, before.fingerprint256);
    assert.equal(reloaded?.fingerprint256, written.fingerprint256);
  });

  test('a Kubernetes Secret rotation, swapping the ..data symlink, reaches change listeners without a manual reload', async (t) => {
    // The layout kubelet gives a mounted Secret: the visible files are symlinks through
    // ..data, which points at a timestamped directory; a rotation writes a new directory and
    // renames a new ..data symlink over the old one in one atomic step.
    const mount = await tempDir(t);
    const writeVersion = async (name: string, hostname: string) => {
      const pair = generateSelfSigned({ hostname });
      await mkdir(join(mount, name));
      await writeFile(join(mount, name, 'tls.crt'), pair.certPem);
      await writeFile(join(mount, name, 'tls.key'), pair.keyPem, { mode: 0o600 });
      return pair;
    };
    await writeVersion('..2026_01_01_00_00_00.0001', 'before.example');
    await symlink('..2026_01_01_00_00_00.0001', join(mount, '..data'));
    await symlink('..data/tls.crt', join(mount, 'tls.crt'));
    await symlink('..data/tls.key', join(mount, 'tls.key'));

    const { logger } = capturingLogger();
    const store = await CertificateStore.open({
      certPath: join(mount, 'tls.crt'),
      keyPath: join(mount, 'tls.key'),
      selfSigned: false,
      hostname: 'relay.example.com',
      logger,
      watchOptions: fastWatch,
    });
    t.after(() => store.close());
    assert.ok(store.info.altNames.includes('DNS:before.example'));
    const changed = nextChange(store);

    await writeVersion('..2026_02_01_00_00_00.0002', 'after.example');
    await symlink('..2026_02_01_00_00_00.0002', join(mount, '..data_tmp'));
    await rename(join(mount, '..data_tmp'), join(mount, '..data'));
    await rm(join(mount, '..2026_01_01_00_00_00.0001'), { recursive: true });

    const after = await changed;
    assert.ok(after.altNames.includes('DNS:after.example'));
    assert.equal(store.info.fingerprint256, after.fingerprint256);
  });

  test('reload() picks up replaced files by itself when watching is off, and reports an unchanged pair as no change', async (t) => {
    const dir = await tempDir(t);
    const certPath = join(dir, 'tls.crt');
    const keyPath = join(dir, 'tls.key');
    const { logger } = capturingLogger();
    const store = await CertificateStore.open({ certPath, keyPath, selfSigned: true, hostname: 'before.example', logger, watch: false });
    const seen: string[] = [];
    store.onChange((material, info) => {
      assert.ok(material.cert.equals(store.material.cert));
      seen.push(info.fingerprint256);
    });

    assert.equal(store.reload(), false);
    assert.deepEqual(seen, []);

    const written = await writeSelfSigned(certPath, keyPath, { hostname: 'after.example' });
    assert.equal(store.reload(), true);
    assert.deepEqual(seen, [written.fingerprint256]);
  });

  test('a listener that throws does not keep the new certificate from the others', async (t) => {
    const dir = await tempDir(t);
    const certPath = join(dir, 'tls.crt');
    const keyPath = join(dir, 'tls.key');
    const { logger, lines } = capturingLogger();
    const store = await CertificateStore.open({ certPath, keyPath, selfSigned: true, hostname: 'before.example', logger, watch: false });
    let reached = false;
    store.onChange(() => {
      throw new Error('listener is closing');
    });
    store.onChange(() => {
      reached = true;
    });
    await writeSelfSigned(certPath, keyPath, { hostname: 'after.example' });
    assert.equal(store.reload(), true);
    assert.equal(reached, true);
    assert.ok(lines.some((l) => l.level === 'error' && l.msg === 'Applying the reloaded TLS certificate failed'));
  });
});
