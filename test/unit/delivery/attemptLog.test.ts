import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createLogger } from '../../../src/util/logger.js';
import { deliveryFixture } from './fixture.js';
import { startUpstream } from './upstream.js';

function capturingLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const text: string[] = [];
  const logger = createLogger('debug', {
    write(line: string) {
      text.push(line);
      lines.push(JSON.parse(line) as Record<string, unknown>);
    },
  });
  return { logger, lines, text };
}

describe('the delivery log', () => {
  test('has one line per attempt with the queue id, recipient count, result and remote reply, and no credentials', async () => {
    const password = 'correct-horse-battery-staple';
    const upstream = await startUpstream({ starttls: true, credentials: { user: 'relay', pass: password } });
    const { logger, lines, text } = capturingLogger();
    const smarthost = { host: '127.0.0.1', port: upstream.port, tls: 'starttls' as const, verifyCertificate: false };
    const refused = await deliveryFixture({ smarthost: { ...smarthost, auth: { user: 'relay', pass: `${password}-wrong` } }, logger });
    const accepted = await deliveryFixture({ smarthost: { ...smarthost, auth: { user: 'relay', pass: password } }, logger });
    try {
      let attempt = refused.nextAttempt();
      const deferred = await refused.commit('Subject: x\r\n\r\nx\r\n', { sender: 'a@example.com', recipients: ['b@example.net', 'c@example.net'] });
      await attempt;
      attempt = accepted.nextAttempt();
      const delivered = await accepted.commit('Subject: y\r\n\r\ny\r\n', { sender: 'a@example.com', recipients: ['d@example.net'] });
      await attempt;

      const attempts = lines.filter((l) => l.msg === 'delivery attempt');
      assert.equal(attempts.length, 2);
      assert.deepEqual(
        attempts.map((l) => [l.queueId, l.recipients, l.result]),
        [
          [deferred.id, 2, 'deferred'],
          [delivered.id, 1, 'delivered'],
        ],
      );
      assert.match(String(attempts[0]!.reply), /535/);
      assert.match(String(attempts[1]!.reply), /^250 /);
      for (const line of text) assert.ok(!line.includes(password), `a log line carries the password: ${line}`);
    } finally {
      await refused.close();
      await accepted.close();
      await upstream.close();
    }
  });
});
