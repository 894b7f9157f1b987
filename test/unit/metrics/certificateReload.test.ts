import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { CertificateStore, type CertificateReloadOutcome } from '../../../src/tls/certificateStore.js';
import { writeSelfSigned } from '../../../src/tls/selfSigned.js';
import { silentLogger } from '../../../src/util/logger.js';
import { tempDir } from './support.js';

describe('certificate reload outcomes', () => {
  test('every reload reports whether it worked and whether the certificate changed', async (t) => {
    const dir = await tempDir(t);
    const certPath = join(dir, 'tls.crt');
    const keyPath = join(dir, 'tls.key');
    const outcomes: CertificateReloadOutcome[] = [];
    const store = await CertificateStore.open({
      certPath,
      keyPath,
      selfSigned: true,
      hostname: 'mail.example',
      logger: silentLogger(),
      watch: false,
      onReload: (outcome) => outcomes.push(outcome),
    });
    t.after(() => store.close());

    assert.equal(store.reload(), false);
    await writeSelfSigned(certPath, keyPath, { hostname: 'other.example' });
    assert.equal(store.reload(), true);
    await writeFile(certPath, 'not a certificate');
    assert.equal(store.reload(), false);

    assert.deepEqual(outcomes, [{ ok: true, changed: false }, { ok: true, changed: true }, { ok: false }]);
  });
});
