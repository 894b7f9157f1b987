import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ALICE, gatewayWithUpstream } from '../helpers/gateway.js';
import { SmtpTestClient, authenticatedClient } from '../helpers/smtpClient.js';

describe('idle and slow clients are cut off', () => {
  const fixture = gatewayWithUpstream('limits: { idleTimeout: 1s, dataTimeout: 2s }');

  test('a client that says nothing after the greeting gets 421 4.4.2 and is disconnected', async () => {
    const client = await SmtpTestClient.connect(fixture.postern.submissionPort);
    assert.equal((await client.greeting()).code, 220);
    const reply = await client.read(5000);
    assert.equal(reply.code, 421);
    assert.match(reply.last, /^421 4\.4\.2 /);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(client.isClosed, true);
  });

  test('a client that drips its message slower than the DATA timeout gets 421 4.4.2 and nothing is relayed', async () => {
    const client = await authenticatedClient(fixture.postern.submissionPort, ALICE);
    await client.command('MAIL FROM:<alice@example.com>');
    await client.command('RCPT TO:<bob@example.net>');
    assert.equal((await client.command('DATA')).code, 354);
    // One line every 500 ms keeps the idle timer (1s) happy but never finishes within 2s.
    const drip = setInterval(() => client.write('X-Drip: still here\r\n'), 500);
    try {
      const reply = await client.read(6000);
      assert.equal(reply.last, '421 4.4.2 Timeout while receiving the message, closing connection');
    } finally {
      clearInterval(drip);
      client.destroy();
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(fixture.upstream.messages.length, 0);
    assert.deepEqual(await readdir(join(fixture.postern.dir, 'spool', 'tmp')), [], 'the partial message was discarded');
    assert.deepEqual(await readdir(join(fixture.postern.dir, 'spool', 'queue')), []);
  });

  test('a client that hangs up in the middle of DATA leaves nothing in the spool', async () => {
    const client = await authenticatedClient(fixture.postern.submissionPort, ALICE);
    await client.command('MAIL FROM:<alice@example.com>');
    await client.command('RCPT TO:<bob@example.net>');
    assert.equal((await client.command('DATA')).code, 354);
    client.write('Subject: cut short\r\n\r\nhalf a messa');
    await new Promise((resolve) => setTimeout(resolve, 100));
    client.destroy();
    const deadline = Date.now() + 3000;
    let left = await readdir(join(fixture.postern.dir, 'spool', 'tmp'));
    while (left.length > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      left = await readdir(join(fixture.postern.dir, 'spool', 'tmp'));
    }
    assert.deepEqual(left, []);
    assert.deepEqual(await readdir(join(fixture.postern.dir, 'spool', 'queue')), []);
  });
});
