import assert from 'node:assert/strict';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ALICE, startTestGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';
import { SmtpTestClient, authenticatedClient } from '../helpers/smtpClient.js';

const HTTP = 'http: { enabled: true, host: 127.0.0.1, port: 0 }';

async function statusOf(port: number, path: string): Promise<number> {
  return (await fetch(`http://127.0.0.1:${port}${path}`)).status;
}

async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('readiness and liveness', () => {
  test('/readyz turns 503 while the spool cannot be written and back to 200 when it can; /healthz stays 200', async () => {
    const postern = await startTestGateway({ upstreamPort: await freePort(), extraYaml: HTTP });
    const port = postern.gateway.httpAddress!.port;
    try {
      assert.equal(await statusOf(port, '/readyz'), 200);
      const tmp = join(postern.dir, 'spool', 'tmp');
      await rm(tmp, { recursive: true, force: true });
      await writeFile(tmp, 'not a directory');
      await eventually(async () => (await statusOf(port, '/readyz')) === 503, '/readyz to say 503');
      assert.equal(await statusOf(port, '/healthz'), 200);
      await rm(tmp);
      await mkdir(tmp);
      await eventually(async () => (await statusOf(port, '/readyz')) === 200, '/readyz to say 200 again');
    } finally {
      await postern.dispose();
    }
  });

  test('while draining, /readyz is 503 first (listeners still open for readinessDelay) and /healthz still 200', async () => {
    const postern = await startTestGateway({
      upstreamPort: await freePort(),
      extraYaml: `${HTTP}\nshutdown: { gracePeriod: 3s, readinessDelay: 2s }`,
    });
    const port = postern.gateway.httpAddress!.port;
    // An open session keeps the drain going for the grace period.
    const client = await authenticatedClient(postern.submissionPort, ALICE);
    try {
      const stopping = postern.gateway.stop();
      await eventually(async () => (await statusOf(port, '/readyz')) === 503, '/readyz to say 503 while draining');
      assert.equal(await statusOf(port, '/healthz'), 200);
      // Within the readiness delay the listener still takes connections a balancer sent late.
      const late = await SmtpTestClient.connect(postern.submissionPort);
      assert.equal((await late.greeting()).code, 220);
      late.destroy();
      client.destroy();
      await stopping;
    } finally {
      client.destroy();
      await postern.dispose();
    }
  });
});
