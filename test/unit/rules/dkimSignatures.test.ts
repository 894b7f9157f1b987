import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { DnsResolver } from '../../../src/policy/types.js';
import { checkDkimSignatures } from '../../../src/rules/shared/dkimSignatures.js';
import { ManualClock } from '../../../src/util/clock.js';
import { MessageSpool } from './context.js';
import { keyRecords, rsaKey, signMessage } from './dkimFixtures.js';
import { FakeZone } from './fakeZone.js';

const spool = new MessageSpool();
after(() => spool.remove());

const key = rsaKey('example.com');
const RAW = 'From: news@example.com\nTo: bob@example.org\nSubject: hi\nDate: Thu, 01 Jan 2026 00:00:00 +0000\n\nHello Bob.\n';

/** A resolver that holds every answer until release() is called. */
function heldResolver(zone: FakeZone): { resolver: DnsResolver; release(): void } {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  return {
    resolver: async (name, type) => {
      await gate;
      return zone.resolver(name, type);
    },
    release,
  };
}

describe('DKIM signatures, verified once per message', () => {
  test('rules asking about the same message share one verification: one key look-up', async () => {
    const zone = new FakeZone(keyRecords(key));
    const message = spool.add(await signMessage(RAW, [key]));
    const deps = { resolver: zone.resolver, clock: new ManualClock() };
    const [first, second] = await Promise.all([checkDkimSignatures(message, deps), checkDkimSignatures(message, deps)]);
    const third = await checkDkimSignatures(message, deps);
    for (const checks of [first, second, third]) assert.deepEqual(checks, [{ domain: 'example.com', outcome: 'pass', reason: '' }]);
    assert.deepEqual(zone.asked, [`${key.name} TXT`]);
  });

  test('a caller that gives up does not take the answer from one still waiting', async () => {
    const zone = new FakeZone(keyRecords(key));
    const held = heldResolver(zone);
    const message = spool.add(await signMessage(RAW, [key]));
    const deps = { resolver: held.resolver, clock: new ManualClock() };
    const impatient = new AbortController();
    const first = checkDkimSignatures(message, deps, impatient.signal);
    const second = checkDkimSignatures(message, deps, new AbortController().signal);
    impatient.abort(new Error('rule timed out'));
    await assert.rejects(first, /rule timed out/);
    held.release();
    assert.deepEqual(await second, [{ domain: 'example.com', outcome: 'pass', reason: '' }]);
  });

  test('when every caller gives up the verification stops, and a later caller starts it again', async () => {
    const zone = new FakeZone(keyRecords(key));
    const held = heldResolver(zone);
    const message = spool.add(await signMessage(RAW, [key]));
    const deps = { resolver: held.resolver, clock: new ManualClock() };
    const only = new AbortController();
    const abandoned = checkDkimSignatures(message, deps, only.signal);
    only.abort(new Error('stage deadline'));
    await assert.rejects(abandoned, /stage deadline/);
    held.release();
    const later = await checkDkimSignatures(message, { resolver: zone.resolver, clock: new ManualClock() });
    assert.deepEqual(later, [{ domain: 'example.com', outcome: 'pass', reason: '' }]);
  });
});
