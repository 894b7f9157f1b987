import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { deliveryFixture, PLAIN_SMARTHOST } from './fixture.js';
import { startUpstream } from './upstream.js';

/** Bytes a re-encoding relay would change: dot-stuffing candidates, 8-bit text, long lines, odd headers. */
const TRICKY_MESSAGE = Buffer.concat([
  Buffer.from('Received: from client (client [192.0.2.1])\r\n\tby relay.test with ESMTPSA id 123;\r\n\tThu, 1 Jan 2026 00:00:00 +0000\r\n'),
  Buffer.from('From: =?utf-8?q?J=C3=B6rg?= <jorg@example.com>\r\nTo: someone-else@example.org\r\nSubject:   spacing   kept  \r\n'),
  Buffer.from('Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n'),
  Buffer.from('.leading dot\r\n..two dots\r\n.\r\nnot the end\r\n'),
  Buffer.from('Grüße aus Köln — ünïcödé\r\n', 'utf8'),
  Buffer.from(`${'x'.repeat(990)}\r\n`),
  Buffer.from('trailing spaces   \r\n\r\n\r\nlast line\r\n'),
]);

describe('delivery to a smarthost', () => {
  test('sends a committed message byte for byte with its own envelope, then removes it from the spool', async () => {
    const upstream = await startUpstream();
    const fixture = await deliveryFixture({ smarthost: { ...PLAIN_SMARTHOST, port: upstream.port } });
    try {
      const attempt = fixture.nextAttempt();
      const envelope = await fixture.commit(TRICKY_MESSAGE, {
        sender: 'jorg@example.com',
        recipients: ['b@example.net', 'c@example.net'],
        bodyType: '8bitmime',
      });
      const report = await attempt;

      assert.equal(report.id, envelope.id);
      assert.equal(report.result, 'delivered');
      assert.equal(report.removed, true);
      assert.equal(upstream.received.length, 1);
      const received = upstream.received[0]!;
      assert.equal(received.from, 'jorg@example.com');
      assert.deepEqual(received.to, ['b@example.net', 'c@example.net']);
      assert.ok(received.data.equals(TRICKY_MESSAGE), 'the upstream received exactly the spooled bytes');
      assert.equal(fixture.spool.get(envelope.id), undefined);
      assert.deepEqual(await readdir(join(fixture.dir, 'queue')), []);
    } finally {
      await fixture.close();
      await upstream.close();
    }
  });

  test('sends the null sender as MAIL FROM:<>', async () => {
    const upstream = await startUpstream();
    const fixture = await deliveryFixture({ smarthost: { ...PLAIN_SMARTHOST, port: upstream.port } });
    try {
      const attempt = fixture.nextAttempt();
      await fixture.commit('Subject: bounce\r\n\r\nx\r\n', { sender: '', recipients: ['b@example.net'] });
      assert.equal((await attempt).result, 'delivered');
      assert.equal(upstream.received[0]?.from, '');
    } finally {
      await fixture.close();
      await upstream.close();
    }
  });

  test('delivers messages already in the spool when it starts', async () => {
    const upstream = await startUpstream();
    const fixture = await deliveryFixture({ smarthost: { ...PLAIN_SMARTHOST, port: upstream.port }, start: false, concurrency: 1 });
    try {
      const ids = [];
      for (let i = 0; i < 3; i++) {
        ids.push((await fixture.commit(`Subject: ${i}\r\n\r\nx\r\n`, { sender: 'a@example.com', recipients: [`r${i}@example.net`] })).id);
        fixture.clock.advance(1);
      }
      const reports: string[] = [];
      const allDone = new Promise<void>((resolve) => {
        fixture.queue.onAttempt((report) => {
          reports.push(report.id);
          if (reports.length === 3) resolve();
        });
      });
      fixture.queue.start();
      await allDone;
      assert.deepEqual(reports, ids, 'oldest first');
      assert.deepEqual(upstream.received.map((m) => m.to[0]), ['r0@example.net', 'r1@example.net', 'r2@example.net']);
      assert.deepEqual(fixture.spool.list(), []);
    } finally {
      await fixture.close();
      await upstream.close();
    }
  });

  test('logs in after STARTTLS when the smarthost requires it', async () => {
    const credentials = { user: 'relay', pass: 's3cret' };
    const upstream = await startUpstream({ starttls: true, credentials });
    const fixture = await deliveryFixture({
      smarthost: { host: '127.0.0.1', port: upstream.port, tls: 'starttls', verifyCertificate: false, auth: credentials },
    });
    try {
      const attempt = fixture.nextAttempt();
      await fixture.commit('Subject: tls\r\n\r\nx\r\n', { sender: 'a@example.com', recipients: ['b@example.net'] });
      assert.equal((await attempt).result, 'delivered');
      assert.equal(upstream.received[0]?.secure, true);
      assert.equal(upstream.received[0]?.user, 'relay');
    } finally {
      await fixture.close();
      await upstream.close();
    }
  });

  test('defers, rather than fails, when the smarthost refuses the credentials', async () => {
    const upstream = await startUpstream({ starttls: true, credentials: { user: 'relay', pass: 'right' } });
    const fixture = await deliveryFixture({
      smarthost: { host: '127.0.0.1', port: upstream.port, tls: 'starttls', verifyCertificate: false, auth: { user: 'relay', pass: 'wrong' } },
    });
    try {
      const attempt = fixture.nextAttempt();
      const envelope = await fixture.commit('Subject: x\r\n\r\nx\r\n', { sender: 'a@example.com', recipients: ['b@example.net'] });
      const report = await attempt;
      assert.equal(report.result, 'deferred');
      assert.match(report.recipients[0]!.reply, /535/);
      assert.doesNotMatch(report.recipients[0]!.reply, /wrong/);
      assert.equal(fixture.spool.get(envelope.id)?.recipients[0]?.status, 'pending');
      assert.equal(upstream.received.length, 0);
    } finally {
      await fixture.close();
      await upstream.close();
    }
  });

  test('refuses to send in plaintext when STARTTLS is required and the smarthost does not offer it', async () => {
    const upstream = await startUpstream({ starttls: false });
    const fixture = await deliveryFixture({
      smarthost: { host: '127.0.0.1', port: upstream.port, tls: 'starttls', verifyCertificate: false },
    });
    try {
      const attempt = fixture.nextAttempt();
      await fixture.commit('Subject: x\r\n\r\nx\r\n', { sender: 'a@example.com', recipients: ['b@example.net'] });
      assert.equal((await attempt).result, 'deferred');
      assert.equal(upstream.received.length, 0);
    } finally {
      await fixture.close();
      await upstream.close();
    }
  });
});
