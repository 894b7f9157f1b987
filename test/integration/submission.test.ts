import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ALICE, gatewayWithUpstream } from '../helpers/gateway.js';
import { sampleMessage, splitReceivedHeader } from '../helpers/messages.js';
import { SmtpTestClient, authenticatedClient } from '../helpers/smtpClient.js';

describe('submission relays authenticated mail to the smarthost', () => {
  const fixture = gatewayWithUpstream();

  async function send(client: SmtpTestClient, body: string, recipients = ['bob@example.net']) {
    assert.equal((await client.command('MAIL FROM:<alice@example.com>')).code, 250);
    for (const rcpt of recipients) assert.equal((await client.command(`RCPT TO:<${rcpt}>`)).code, 250);
    return client.data(body);
  }

  test('STARTTLS then AUTH PLAIN: the upstream gets the exact bytes plus a Received header, and the envelope', async () => {
    const client = await authenticatedClient(fixture.postern.submissionPort, ALICE);
    const body = sampleMessage('plain');
    const reply = await send(client, body, ['bob@example.net', 'carol@example.org']);
    await client.quit();
    assert.equal(reply.code, 250);
    const queueId = /^2\.0\.0 Ok: queued as ([0-9A-Z]+)$/.exec(reply.lines[0]!)?.[1];
    assert.ok(queueId, `reply names the queue id: ${reply.last}`);

    const message = (await fixture.upstream.waitFor(1)).find((m) => m.raw.toString('latin1').includes(`id ${queueId};`));
    assert.ok(message, 'the upstream received the message carrying its queue id');
    assert.equal(message.from, 'alice@example.com');
    assert.deepEqual(message.to, ['bob@example.net', 'carol@example.org']);
    const { received, rest } = splitReceivedHeader(message.raw);
    assert.equal(rest.toString('latin1'), body);
    assert.match(received, /^Received: from client\.example\.test \(\[127\.0\.0\.1\]\)\r\n/);
    assert.match(received, /\(using TLSv1\.[23] with cipher TLS_\w+\)/);
    assert.match(received, new RegExp(`by postern\\.test \\(Postern\\) with ESMTPSA id ${queueId};`));
    assert.doesNotMatch(received, /alice/, 'the user is not named unless received.includeAuthUser is set');
  });

  test('STARTTLS then AUTH LOGIN is relayed too', async () => {
    const before = fixture.upstream.messages.length;
    const client = await SmtpTestClient.connect(fixture.postern.submissionPort);
    await client.greeting();
    await client.ehlo();
    assert.equal((await client.startTls()).code, 220);
    await client.ehlo();
    assert.equal((await client.authLogin(ALICE.user, ALICE.password)).code, 235);
    const body = sampleMessage('login');
    assert.equal((await send(client, body)).code, 250);
    await client.quit();
    const messages = await fixture.upstream.waitFor(before + 1);
    assert.equal(splitReceivedHeader(messages[before]!.raw).rest.toString('latin1'), body);
  });

  test('implicit TLS on the submissions listener is relayed too', async () => {
    const before = fixture.upstream.messages.length;
    const client = await authenticatedClient(fixture.postern.submissionsPort, ALICE, { implicitTls: true });
    const body = sampleMessage('implicit');
    const reply = await send(client, body);
    await client.quit();
    assert.equal(reply.code, 250);
    const messages = await fixture.upstream.waitFor(before + 1);
    assert.equal(splitReceivedHeader(messages[before]!.raw).rest.toString('latin1'), body);
  });

  test('several messages in one session are each queued and relayed', async () => {
    const before = fixture.upstream.messages.length;
    const client = await authenticatedClient(fixture.postern.submissionPort, ALICE);
    for (let i = 0; i < 3; i++) assert.equal((await send(client, sampleMessage(`batch ${i}`))).code, 250);
    await client.quit();
    const messages = await fixture.upstream.waitFor(before + 3);
    const subjects = messages.slice(before).map((m) => /Subject: (.*)\r\n/.exec(m.raw.toString())?.[1]).sort();
    assert.deepEqual(subjects, ['batch 0', 'batch 1', 'batch 2']);
  });
});
