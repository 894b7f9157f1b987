import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AttemptReport } from '../../../src/delivery/deliveryQueue.js';
import type { Envelope } from '../../../src/spool/envelope.js';
import { deliveryAttemptCounter } from '../../../src/metrics/deliveryMetrics.js';
import { createMetrics } from '../../../src/metrics/metrics.js';
import { valueOf } from './support.js';

const RECEIVED_AT = Date.UTC(2026, 0, 1, 12, 0, 0);

function report(recipients: Array<{ address: string; outcome: 'delivered' | 'deferred' | 'failed'; at: number }>): AttemptReport {
  const envelope = {
    id: 'Q1',
    receivedAt: RECEIVED_AT,
    recipients: recipients.map((r) => ({ address: r.address, status: r.outcome === 'deferred' ? 'pending' : r.outcome, attempts: 1, lastAttemptAt: r.at })),
  } as unknown as Envelope;
  return {
    id: 'Q1',
    result: 'partial',
    recipients: recipients.map((r) => ({ address: r.address, outcome: r.outcome, reply: '250 ok', expired: false })),
    envelope,
    removed: false,
  };
}

describe('delivery attempts as metrics', () => {
  test('each recipient of an attempt counts once by its result', async () => {
    const metrics = createMetrics();
    deliveryAttemptCounter(metrics)(
      report([
        { address: 'a@example.net', outcome: 'delivered', at: RECEIVED_AT + 1000 },
        { address: 'b@example.net', outcome: 'deferred', at: RECEIVED_AT + 1000 },
        { address: 'c@example.net', outcome: 'failed', at: RECEIVED_AT + 1000 },
        { address: 'd@example.net', outcome: 'delivered', at: RECEIVED_AT + 1000 },
      ]),
    );
    assert.equal(await valueOf(metrics, 'postern_delivery_attempts_total', { result: 'delivered' }), 2);
    assert.equal(await valueOf(metrics, 'postern_delivery_attempts_total', { result: 'deferred' }), 1);
    assert.equal(await valueOf(metrics, 'postern_delivery_attempts_total', { result: 'failed' }), 1);
  });

  test('latency runs from acceptance to the attempt that delivered, for delivered recipients only', async () => {
    const metrics = createMetrics();
    deliveryAttemptCounter(metrics)(
      report([
        { address: 'a@example.net', outcome: 'delivered', at: RECEIVED_AT + 90_000 },
        { address: 'b@example.net', outcome: 'deferred', at: RECEIVED_AT + 90_000 },
      ]),
    );
    assert.equal(await valueOf(metrics, 'postern_delivery_latency_seconds_count'), 1);
    assert.equal(await valueOf(metrics, 'postern_delivery_latency_seconds_sum'), 90);
    assert.equal(await valueOf(metrics, 'postern_delivery_latency_seconds_bucket', { le: '60' }), 0);
    assert.equal(await valueOf(metrics, 'postern_delivery_latency_seconds_bucket', { le: '300' }), 1);
  });
});
