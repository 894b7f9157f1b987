import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import { startWorldAndGateway, submit, waitForEmptyQueue, type MxWorldOptions } from '../helpers/mxWorld.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';

/**
 * delivery.routes through a real gateway: the organisation's own domains go to a fixed relay
 * (its internal server), every other domain by MX, and one message to both is split into one
 * transaction per next hop.
 */

const OUT_MX = '127.0.0.2';

/**
 * The organisation's internal server on 127.0.0.1, with `routes` (given its port) sending
 * mail to it, and a world and gateway for the rest. The internal server closes after the
 * gateway, whose pooled connection would otherwise hold its close open.
 */
async function startWithInternalServer(t: TestContext, world: MxWorldOptions, routes: (port: number) => string[]) {
  const internal: Upstream = await startUpstream();
  try {
    const started = await startWorldAndGateway(t, world, { routes: routes(internal.port) });
    t.after(() => internal.close());
    return { internal, ...started };
  } catch (error) {
    await internal.close();
    throw error;
  }
}

describe('routes', () => {
  test('recipients of a routed domain and its subdomains go to the relay in one transaction, the rest by MX', async (t) => {
    const { internal, world, postern } = await startWithInternalServer(
      t,
      {
        zone: { zone: 'out.test', mx: { 'out.test': [{ preference: 10, exchange: 'mx.out.test' }] }, hosts: { 'mx.out.test': [OUT_MX] } },
        hosts: { [OUT_MX]: {} },
      },
      (port) => [`{ domains: [corp.test, "*.corp.test"], via: relay, relay: { host: 127.0.0.1, port: ${port}, tls: none } }`],
    );

    await submit(postern, ['bob@corp.test', 'carol@dept.corp.test', 'dave@out.test']);

    const [internalCopy] = await internal.waitFor(1);
    const [outsideCopy] = await world.hosts[OUT_MX]!.waitFor(1);
    await waitForEmptyQueue(postern);
    assert.deepEqual(internalCopy!.to, ['bob@corp.test', 'carol@dept.corp.test'], 'both corp recipients in one transaction');
    assert.equal(internalCopy!.from, 'alice@example.com');
    assert.equal(internalCopy!.secure, false, 'tls: none speaks plaintext to the relay');
    assert.deepEqual(outsideCopy!.to, ['dave@out.test']);
    assert.equal(internal.messages.length, 1);
    assert.equal(world.hosts[OUT_MX]!.messages.length, 1);
    assert.equal(world.mailbox.connections, 0, 'nothing bounced');
  });

  test('a domain a route sends to the relay goes there even when it publishes an MX of its own', async (t) => {
    const { internal, world, postern } = await startWithInternalServer(
      t,
      {
        zone: { zone: 'corp.test', mx: { 'corp.test': [{ preference: 10, exchange: 'mx.corp.test' }] }, hosts: { 'mx.corp.test': [OUT_MX] } },
        hosts: { [OUT_MX]: {} },
      },
      (port) => [`{ domains: [corp.test], via: relay, relay: { host: 127.0.0.1, port: ${port}, tls: none } }`],
    );

    await submit(postern, ['bob@corp.test']);

    const [copy] = await internal.waitFor(1);
    await waitForEmptyQueue(postern);
    assert.deepEqual(copy!.to, ['bob@corp.test']);
    assert.equal(world.hosts[OUT_MX]!.connections, 0, 'the public MX is not used for a routed domain');
  });
});
