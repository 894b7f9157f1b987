import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { MxSender } from '../../../src/delivery/mxSender.js';
import type { DnsResolver } from '../../../src/policy/types.js';
import { silentLogger } from '../../../src/util/logger.js';
import { startUpstream } from './upstream.js';

/** One domain whose single MX is 127.0.0.1 (the resolver is an injected dependency). */
const resolver: DnsResolver = async (name, rrtype) => {
  if (rrtype === 'MX' && name === 'dest.test') return [{ exchange: 'mx.dest.test', priority: 10 }];
  if (rrtype === 'A' && name === 'mx.dest.test') return ['127.0.0.1'];
  throw Object.assign(new Error(`query ${rrtype} ENODATA ${name}`), { code: 'ENODATA' });
};

function message(id: number) {
  return {
    id: `M${id}`,
    sender: 'a@example.com',
    recipients: [`user${id}@dest.test`],
    message: () => Readable.from([Buffer.from(`Subject: ${id}\r\n\r\nbody\r\n`)]),
  };
}

async function peakConnections(maxConnectionsPerDomain: number, messages: number): Promise<{ peak: number; delivered: number }> {
  let releaseAll: () => void = () => undefined;
  const held = new Promise<void>((resolve) => (releaseAll = resolve));
  const upstream = await startUpstream({ beforeDataReply: () => held });
  const sender = new MxSender({ resolver, logger: silentLogger(), clientHostname: 'postern.test', port: upstream.port, maxConnectionsPerDomain, connectTimeoutMs: 5000 });
  try {
    const sends = Array.from({ length: messages }, (_, i) => sender.send('dest.test', message(i), { tls: 'opportunistic', verifyCertificate: false }));
    // Every connection the limit allows gets a transaction held open before the rest go on.
    await upstream.untilOpenConnections(Math.min(maxConnectionsPerDomain, messages));
    await new Promise((resolve) => setTimeout(resolve, 100));
    releaseAll();
    const results = await Promise.all(sends);
    return { peak: upstream.peakOpenConnections, delivered: results.filter((r) => r.recipients[0]!.outcome === 'delivered').length };
  } finally {
    sender.close();
    await upstream.close();
  }
}

describe('connections to one destination domain', () => {
  test('never more than maxConnectionsPerDomain at once, and every message still goes out', async () => {
    assert.deepEqual(await peakConnections(1, 4), { peak: 1, delivered: 4 });
    assert.deepEqual(await peakConnections(2, 5), { peak: 2, delivered: 5 });
  });

  test('a reused connection carries the next message instead of a new one', async () => {
    const upstream = await startUpstream();
    const sender = new MxSender({ resolver, logger: silentLogger(), clientHostname: 'postern.test', port: upstream.port, maxConnectionsPerDomain: 4, connectTimeoutMs: 5000 });
    try {
      for (let i = 0; i < 3; i++) {
        const result = await sender.send('dest.test', message(i), { tls: 'opportunistic', verifyCertificate: false });
        assert.equal(result.recipients[0]!.outcome, 'delivered');
        assert.equal(result.recipients[0]!.remoteMta, 'mx.dest.test');
      }
      assert.equal(upstream.connectionsAccepted, 1);
    } finally {
      sender.close();
      await upstream.close();
    }
  });
});
