import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { createLogger } from '../../src/util/logger.js';
import { ALICE, startTestGateway } from '../helpers/gateway.js';
import { sampleMessage } from '../helpers/messages.js';
import { SmtpTestClient, authenticatedClient } from '../helpers/smtpClient.js';
import { startUpstream } from '../helpers/upstream.js';

describe('logs', () => {
  test('a full session logs every step as JSON with its session id, a summary per message, and never a password or AUTH payload', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(...chunk.toString().split('\n').filter(Boolean));
        done();
      },
    });
    const upstream = await startUpstream();
    const postern = await startTestGateway({ upstreamPort: upstream.port, logger: createLogger('debug', sink) });
    try {
      // A failed login, AUTH LOGIN and AUTH PLAIN with the real password, a queued message.
      const wrong = await SmtpTestClient.connect(postern.submissionsPort, { implicitTls: true });
      await wrong.greeting();
      await wrong.ehlo();
      await wrong.authPlain(ALICE.user, 'not-the-password-9f3a');
      await wrong.quit();
      const login = await SmtpTestClient.connect(postern.submissionsPort, { implicitTls: true });
      await login.greeting();
      await login.ehlo();
      assert.equal((await login.authLogin(ALICE.user, ALICE.password)).code, 235);
      await login.quit();
      const client = await authenticatedClient(postern.submissionPort, ALICE);
      await client.command('MAIL FROM:<alice@example.com>');
      await client.command('RCPT TO:<bob@example.net>');
      const reply = await client.data(sampleMessage('logged'));
      await client.quit();
      const queueId = /queued as (\S+)/.exec(reply.last)![1]!;
      await upstream.waitFor(1);
      await new Promise((r) => setTimeout(r, 300));

      const entries = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
      const secrets = [
        ALICE.password,
        'not-the-password-9f3a',
        Buffer.from(ALICE.password).toString('base64'),
        Buffer.from(`\0${ALICE.user}\0${ALICE.password}`).toString('base64'),
        Buffer.from(`\0${ALICE.user}\0not-the-password-9f3a`).toString('base64'),
      ];
      for (const secret of secrets) {
        assert.equal(lines.some((line) => line.includes(secret)), false, `a log line contains a secret: ${secret.slice(0, 6)}...`);
      }
      const summary = entries.find((e) => e.component === 'smtp' && e.msg === 'message queued' && e.queueId === queueId);
      assert.ok(summary, 'one summary line for the message');
      for (const key of ['sessionId', 'user', 'client', 'size', 'recipients', 'outcome']) assert.ok(key in summary, `the summary has ${key}`);
      assert.ok(entries.some((e) => e.event === 'auth' && e.result === 'invalid'), 'the failed login is logged');
      assert.ok(entries.some((e) => e.queueId === queueId && e.component === 'delivery'), 'the delivery attempt is logged with the queue id');
      const sessionLines = entries.filter((e) => e.component === 'smtp' && e.event !== undefined);
      assert.ok(sessionLines.length > 0 && sessionLines.every((e) => typeof e.sessionId === 'string'), 'every session line carries its session id');
    } finally {
      await postern.dispose();
      await upstream.close();
    }
  });
});
