import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createMetrics } from '../../../src/metrics/metrics.js';
import { SmtpMetrics } from '../../../src/metrics/smtpMetrics.js';
import { valueOf } from './support.js';

describe('SMTP events as metrics', () => {
  test('every series of an enabled listener exists at 0 before the first connection', async () => {
    const metrics = createMetrics();
    new SmtpMetrics(metrics, ['submissions']);
    assert.equal(await valueOf(metrics, 'postern_connections_total', { listener: 'submissions' }), 0);
    assert.equal(await valueOf(metrics, 'postern_connections_active', { listener: 'submissions' }), 0);
    assert.equal(await valueOf(metrics, 'postern_connections_refused_total', { listener: 'submissions', reason: 'tls-timeout' }), 0);
    assert.equal(await valueOf(metrics, 'postern_tls_sessions_total', { listener: 'submissions', version: 'TLSv1.3' }), 0);
    assert.equal(await valueOf(metrics, 'postern_connections_total', { listener: 'submission' }), undefined);
  });

  test('an opened session counts once and is active until it closes', async () => {
    const metrics = createMetrics();
    const observer = new SmtpMetrics(metrics, ['submission']);
    observer.connectionOpened('submission');
    observer.connectionOpened('submission');
    assert.equal(await valueOf(metrics, 'postern_connections_active', { listener: 'submission' }), 2);
    observer.connectionClosed('submission');
    assert.equal(await valueOf(metrics, 'postern_connections_total', { listener: 'submission' }), 2);
    assert.equal(await valueOf(metrics, 'postern_connections_active', { listener: 'submission' }), 1);
  });

  test('an accepted message counts and adds its size to the histogram', async () => {
    const metrics = createMetrics();
    const observer = new SmtpMetrics(metrics, []);
    observer.messageReceived();
    observer.messageAccepted(5000);
    assert.equal(await valueOf(metrics, 'postern_messages_received_total'), 1);
    assert.equal(await valueOf(metrics, 'postern_messages_accepted_total'), 1);
    assert.equal(await valueOf(metrics, 'postern_message_size_bytes_count'), 1);
    assert.equal(await valueOf(metrics, 'postern_message_size_bytes_sum'), 5000);
    assert.equal(await valueOf(metrics, 'postern_message_size_bytes_bucket', { le: '4096' }), 0);
    assert.equal(await valueOf(metrics, 'postern_message_size_bytes_bucket', { le: '16384' }), 1);
  });

  test('a rejection is counted by stage and reason, and a mechanism nobody offered does not become a label', async () => {
    const metrics = createMetrics();
    const observer = new SmtpMetrics(metrics, []);
    observer.messageRejected('rcpt', 'per-user');
    observer.authAttempted('PLAIN', 'locked');
    observer.authAttempted('XOAUTH2', 'invalid');
    assert.equal(await valueOf(metrics, 'postern_messages_rejected_total', { stage: 'rcpt', reason: 'per-user' }), 1);
    assert.equal(await valueOf(metrics, 'postern_auth_attempts_total', { mechanism: 'PLAIN', result: 'locked' }), 1);
    assert.equal(await valueOf(metrics, 'postern_auth_attempts_total', { mechanism: 'other', result: 'invalid' }), 1);
    assert.equal(await valueOf(metrics, 'postern_auth_attempts_total', { mechanism: 'XOAUTH2', result: 'invalid' }), undefined);
  });
});
