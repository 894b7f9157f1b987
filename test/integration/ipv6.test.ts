import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ALICE, startTestGateway } from '../helpers/gateway.js';
import { sampleMessage, splitReceivedHeader } from '../helpers/messages.js';
import { startWorldAndGateway, submit, waitForEmptyQueue } from '../helpers/mxWorld.js';
import { authenticatedClient } from '../helpers/smtpClient.js';
import { startUpstream } from '../helpers/upstream.js';

/**
 * IPv6 end to end on the loopback address ::1: a client submitting over IPv6, and direct
 * delivery to a domain whose only MX host has an AAAA record.
 */

describe('IPv6', () => {
  test('a client on ::1 submits over STARTTLS and implicit TLS; the Received header names it as an IPv6 literal', async (t) => {
    const upstream = await startUpstream();
    const postern = await startTestGateway({
      upstreamPort: upstream.port,
      extraYaml: 'listeners: { submission: { host: "::1", port: 0 }, submissions: { host: "::1", port: 0 } }',
    });
    t.after(async () => {
      await postern.dispose();
      await upstream.close();
    });

    for (const implicitTls of [false, true]) {
      const port = implicitTls ? postern.submissionsPort : postern.submissionPort;
      const client = await authenticatedClient(port, ALICE, { implicitTls, host: '::1' });
      assert.equal((await client.command('MAIL FROM:<alice@example.com>')).code, 250);
      assert.equal((await client.command('RCPT TO:<bob@example.net>')).code, 250);
      const message = sampleMessage(`over IPv6 ${implicitTls ? 'implicit' : 'starttls'}`);
      assert.equal((await client.data(message)).code, 250);
      await client.quit();
      const received = (await upstream.waitFor(implicitTls ? 2 : 1)).at(-1)!;
      const { received: trace, rest } = splitReceivedHeader(received.raw);
      assert.match(trace, /\[IPv6:::1\]/, trace);
      assert.equal(rest.toString('latin1'), message);
    }
  });

  test('a domain whose only MX host has an AAAA record is delivered to over IPv6', async (t) => {
    const { world, postern } = await startWorldAndGateway(t, {
      zone: { zone: 'six.test', mx: { 'six.test': [{ preference: 10, exchange: 'mx.six.test' }] }, hosts: { 'mx.six.test': ['::1'] } },
      hosts: { '::1': {} },
    });

    await submit(postern, ['bob@six.test']);

    const [received] = await world.hosts['::1']!.waitFor(1);
    await waitForEmptyQueue(postern);
    assert.deepEqual(received!.to, ['bob@six.test']);
  });
});
