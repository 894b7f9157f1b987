import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { sampleMessage, splitReceivedHeader } from '../helpers/messages.js';
import { startWorldAndGateway, submit, waitForEmptyQueue, type MxWorldOptions } from '../helpers/mxWorld.js';

/**
 * Direct delivery through a real gateway: alice submits over STARTTLS with AUTH, the gateway
 * asks dnsmasq on loopback for the recipient domain's MX hosts and delivers to SMTP servers
 * on 127.0.0.x, as it would to the Internet on port 25.
 */

const PRIMARY = '127.0.0.2';
const BACKUP = '127.0.0.3';

/** A domain with two MX hosts: mx1 (preference 10) at PRIMARY, mx2 (20) at BACKUP. */
function twoMxZone(zone: string): MxWorldOptions['zone'] {
  return {
    zone,
    mx: {
      // Listed backup first: the order must come from the preferences.
      [zone]: [
        { preference: 20, exchange: `mx2.${zone}` },
        { preference: 10, exchange: `mx1.${zone}` },
      ],
    },
    hosts: { [`mx1.${zone}`]: [PRIMARY], [`mx2.${zone}`]: [BACKUP] },
  };
}

describe('delivery by MX', () => {
  test('a message goes to the MX host with the lowest preference, and only there', async (t) => {
    const { world, postern } = await startWorldAndGateway(t, { zone: twoMxZone('pref.test'), hosts: { [PRIMARY]: {}, [BACKUP]: {} } });
    const message = sampleMessage('preference');

    await submit(postern, ['bob@pref.test'], message);

    const [received] = await world.hosts[PRIMARY]!.waitFor(1);
    assert.equal(received!.from, 'alice@example.com');
    assert.deepEqual(received!.to, ['bob@pref.test']);
    assert.equal(splitReceivedHeader(received!.raw).rest.toString('latin1'), message, 'the message arrives byte for byte after the Received header');
    await waitForEmptyQueue(postern);
    assert.equal(world.hosts[BACKUP]!.connections, 0, 'the backup MX is never contacted');
    assert.equal(world.hosts[PRIMARY]!.messages.length, 1);
  });

  test('a preferred MX host that answers 421 at the greeting is passed over for the next one', async (t) => {
    const { world, postern, log } = await startWorldAndGateway(t, {
      zone: twoMxZone('busy.test'),
      hosts: { [PRIMARY]: { greeting: { code: 421, message: '4.3.2 busy, try later' } }, [BACKUP]: {} },
    });

    await submit(postern, ['bob@busy.test']);

    const [received] = await world.hosts[BACKUP]!.waitFor(1);
    assert.deepEqual(received!.to, ['bob@busy.test']);
    await waitForEmptyQueue(postern);
    assert.ok(world.hosts[PRIMARY]!.connections >= 1, 'the preferred host was tried first');
    assert.equal(world.hosts[PRIMARY]!.messages.length, 0);
    const failover = log.find((e) => e.msg === 'MX host failed; trying the next' && e.address === PRIMARY);
    assert.ok(failover, 'the failover is logged');
    assert.match(String(failover.err), /421/);
  });

  test('a preferred MX host that refuses the session with 554 at the greeting is passed over for the next one', async (t) => {
    // RFC 5321 section 3.1: a 554 greeting refuses this session, not the message; another
    // MX host may well take it.
    const { world, postern } = await startWorldAndGateway(t, {
      zone: twoMxZone('refuse.test'),
      hosts: { [PRIMARY]: { greeting: { code: 554, message: '5.3.2 no SMTP service here' } }, [BACKUP]: {} },
    });

    await submit(postern, ['bob@refuse.test']);

    const [received] = await world.hosts[BACKUP]!.waitFor(1);
    assert.deepEqual(received!.to, ['bob@refuse.test']);
    await waitForEmptyQueue(postern);
    assert.ok(world.hosts[PRIMARY]!.connections >= 1, 'the preferred host was tried first');
  });

  test('a preferred MX host where nothing listens is passed over for the next one', async (t) => {
    const { world, postern } = await startWorldAndGateway(t, { zone: twoMxZone('down.test'), hosts: { [BACKUP]: {} }, down: [PRIMARY] });

    await submit(postern, ['bob@down.test', 'carol@down.test']);

    const [received] = await world.hosts[BACKUP]!.waitFor(1);
    assert.deepEqual(received!.to, ['bob@down.test', 'carol@down.test'], 'both recipients in one transaction');
    await waitForEmptyQueue(postern);
    assert.equal(world.hosts[BACKUP]!.messages.length, 1);
  });

  test('a domain without MX records is delivered to its own A record address', async (t) => {
    const host = '127.0.0.4';
    const { world, postern } = await startWorldAndGateway(t, { zone: { zone: 'plain.test', hosts: { 'plain.test': [host] } }, hosts: { [host]: {} } });

    await submit(postern, ['bob@plain.test']);

    const [received] = await world.hosts[host]!.waitFor(1);
    assert.deepEqual(received!.to, ['bob@plain.test']);
    assert.equal(received!.from, 'alice@example.com');
    await waitForEmptyQueue(postern);
  });

  test('the gateway speaks STARTTLS to an MX host that offers it', async (t) => {
    const { world, postern } = await startWorldAndGateway(t, { zone: twoMxZone('tls.test'), hosts: { [PRIMARY]: {}, [BACKUP]: {} } });

    await submit(postern, ['bob@tls.test']);

    const [received] = await world.hosts[PRIMARY]!.waitFor(1);
    assert.equal(received!.secure, true, 'opportunistic TLS: the session was upgraded');
    await waitForEmptyQueue(postern);
  });
});
