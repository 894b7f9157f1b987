import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createMetrics } from '../../../src/metrics/metrics.js';
import { Spool } from '../../../src/spool/spool.js';
import { ManualClock } from '../../../src/util/clock.js';
import { silentLogger } from '../../../src/util/logger.js';
import { tempDir, valueOf } from './support.js';

async function queue(spool: Spool, body: string): Promise<void> {
  const incoming = await spool.createIncoming();
  await incoming.write(Buffer.from(body));
  await incoming.commit({ sender: 'alice@example.com', recipients: ['bob@example.net'] });
}

describe('spool gauges', () => {
  test('read the spool at each scrape: messages, bytes and the age of the oldest', async (t) => {
    const clock = new ManualClock();
    const spool = await Spool.open({ dir: await tempDir(t), logger: silentLogger(), clock });
    const metrics = createMetrics();
    metrics.watchSpool(spool, clock);

    assert.equal(await valueOf(metrics, 'postern_spool_messages'), 0);
    assert.equal(await valueOf(metrics, 'postern_spool_oldest_message_age_seconds'), 0);

    await queue(spool, 'first message\r\n');
    clock.advance(30_000);
    await queue(spool, 'second, longer message\r\n');
    clock.advance(15_000);

    const stats = spool.stats();
    assert.equal(await valueOf(metrics, 'postern_spool_messages'), 2);
    assert.equal(await valueOf(metrics, 'postern_spool_bytes'), stats.bytes);
    assert.equal(await valueOf(metrics, 'postern_spool_oldest_message_age_seconds'), 45);
  });
});
