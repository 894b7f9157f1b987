import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { prepareGatewayDir, startTestGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';

test('a second gateway on a spool another one is using refuses to start, and leaves that spool alone', async (t) => {
  const prepared = await prepareGatewayDir({ upstreamPort: await freePort() });
  const first = await startTestGateway({ upstreamPort: 0, dir: prepared });
  t.after(() => first.dispose());

  await assert.rejects(startTestGateway({ upstreamPort: 0, dir: prepared }), /another process answers there \(is a gateway already running on this spool\?\)/);
  // The first one still owns it: its socket answers and its spool is intact.
  assert.ok((await readdir(join(prepared.dir, 'spool'))).includes('control.sock'));

  await first.stop();
  const again = await startTestGateway({ upstreamPort: 0, dir: prepared });
  await again.stop();
});
