import assert from 'node:assert/strict';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { ALICE, prepareGatewayDir, spawnGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';
import { SmtpTestClient, authenticatedClient } from '../helpers/smtpClient.js';
import { startUpstream } from '../helpers/upstream.js';

async function status(url: string): Promise<number> {
  return (await fetch(url)).status;
}

async function refusesConnections(port: number): Promise<boolean> {
  try {
    const probe = await SmtpTestClient.connect(port);
    probe.destroy();
    return false;
  } catch {
    return true;
  }
}

test('SIGTERM mid-DATA: /readyz fails first, then new connections are refused, the message completes, and it is delivered after a restart', async (t) => {
  // The next hop is down until after the restart, so the message can only arrive from the spool.
  const upstreamPort = await freePort();
  const prepared = await prepareGatewayDir({
    upstreamPort,
    extraYaml: 'log: { level: info }\nhttp: { host: 127.0.0.1, port: 0 }\nshutdown: { gracePeriod: 10s, readinessDelay: 1500ms }',
  });
  t.after(() => rm(prepared.dir, { recursive: true, force: true }));

  const gateway = await spawnGateway(prepared.configFile);
  const httpPort = gateway.logs.find((entry) => entry.msg === 'operations endpoints listening')?.port as number;
  assert.equal(await status(`http://127.0.0.1:${httpPort}/readyz`), 200);

  const client = await authenticatedClient(gateway.submissionPort, ALICE);
  assert.equal((await client.command('MAIL FROM:<alice@example.com>')).code, 250);
  assert.equal((await client.command('RCPT TO:<bob@example.net>')).code, 250);
  assert.equal((await client.command('DATA')).code, 354);
  client.write('From: alice@example.com\r\nTo: bob@example.net\r\nSubject: drained\r\n\r\nfirst half\r\n');

  gateway.child.kill('SIGTERM');
  // Out of the load balancer first: /readyz says 503 while /healthz still says 200 and the
  // listener still accepts, for the readiness delay.
  let readyz = 200;
  while (readyz === 200) readyz = await status(`http://127.0.0.1:${httpPort}/readyz`);
  assert.equal(readyz, 503);
  assert.equal(await status(`http://127.0.0.1:${httpPort}/healthz`), 200);
  assert.equal(await refusesConnections(gateway.submissionPort), false, 'still accepting during the readiness delay');
  // Then the listeners close.
  while (!(await refusesConnections(gateway.submissionPort))) await new Promise((resolve) => setTimeout(resolve, 50));

  // The session that was in DATA when the signal came completes its message.
  client.write('second half\r\n.\r\n');
  const reply = await client.read();
  assert.equal(reply.code, 250, reply.last);
  await client.quit().catch(() => undefined);
  assert.equal(await gateway.exited, 0);
  assert.equal((await readdir(join(prepared.dir, 'spool', 'queue'))).filter((name) => name.endsWith('.json')).length, 1, 'queued, not yet delivered');

  const upstream = await startUpstream({ port: upstreamPort });
  t.after(() => upstream.close());
  const restarted = await spawnGateway(prepared.configFile);
  t.after(async () => {
    restarted.child.kill('SIGTERM');
    await restarted.exited;
  });
  const [message] = await upstream.waitFor(1);
  const text = message!.raw.toString();
  assert.match(text, /Subject: drained\r\n\r\nfirst half\r\nsecond half\r\n$/);
});
