import assert from 'node:assert/strict';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { MtaStsResolver, POLICY_BODY_LIMIT_BYTES } from '../../../src/delivery/mtaSts.js';
import { ManualClock } from '../../../src/util/clock.js';
import { silentLogger } from '../../../src/util/logger.js';
import { createTestCa } from '../../helpers/testCa.js';
import { ENFORCE_POLICY, exampleZone, policyHostTls, scenario, startPolicyHost, testCa, type PolicyAnswer, type PolicyHost } from './mtaStsPolicyHost.js';

async function policyWith(answer: Partial<PolicyAnswer>) {
  const s = await scenario(answer);
  try {
    return { policy: await s.sts.policyFor('example.test'), requests: s.host.requests.length };
  } finally {
    await s.close();
  }
}

describe('fetching an MTA-STS policy', () => {
  test('fetches the policy named by the TXT record from the policy host over verified HTTPS', async () => {
    const s = await scenario();
    try {
      const policy = await s.sts.policyFor('example.test');
      assert.deepEqual(policy, { id: 'policy1', mode: 'enforce', mx: ['mail.example.test', '*.backup.example.test'], maxAgeSeconds: 86400 });
      assert.deepEqual(s.host.requests, [{ path: '/.well-known/mta-sts.txt', host: `mta-sts.example.test:${s.host.port}` }]);
    } finally {
      await s.close();
    }
  });

  test('finds the policy host through the injected resolver, A records first', async () => {
    const s = await scenario();
    try {
      assert.equal((await s.sts.policyFor('Example.Test.'))?.id, 'policy1');
      // example.test exists only in the injected zone: the system resolver could not have found it.
      const queries = s.zone.queries;
      assert.equal(queries[0], 'TXT _mta-sts.example.test');
      assert.ok(queries.indexOf('A mta-sts.example.test') < queries.indexOf('AAAA mta-sts.example.test'));
    } finally {
      await s.close();
    }
  });

  test('reaches a policy host that has only an AAAA record', async (t) => {
    const v6 = createHttpsServer({ cert: policyHostTls().certPem, key: policyHostTls().keyPem }, (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(ENFORCE_POLICY);
    });
    const listening = await new Promise<boolean>((resolve) => {
      v6.once('error', () => resolve(false));
      v6.listen(0, '::1', () => resolve(true));
    });
    if (!listening) {
      t.skip('this machine has no IPv6 loopback');
      return;
    }
    try {
      const zone = exampleZone().delete('mta-sts.example.test', 'A').set('mta-sts.example.test', 'AAAA', ['::1']);
      const port = (v6.address() as AddressInfo).port;
      const sts = new MtaStsResolver({ resolver: zone.resolve, clock: new ManualClock(), logger: silentLogger(), httpsPort: port, ca: testCa().caPem });
      assert.equal((await sts.policyFor('example.test'))?.mode, 'enforce');
    } finally {
      await new Promise<void>((resolve) => v6.close(() => resolve()));
    }
  });

  test('accepts text/plain with parameters', async () => {
    const { policy } = await policyWith({ headers: { 'content-type': 'Text/Plain; charset=utf-8' } });
    assert.equal(policy?.mode, 'enforce');
  });

  test('has no policy when the policy host is not trusted', async () => {
    const untrusted = createTestCa('Someone Else');
    const host = await startPolicyHost(untrusted.issue(['mta-sts.example.test']));
    try {
      const sts = new MtaStsResolver({ resolver: exampleZone().resolve, clock: new ManualClock(), logger: silentLogger(), httpsPort: host.port, ca: testCa().caPem });
      assert.equal(await sts.policyFor('example.test'), undefined);
      assert.equal(host.requests.length, 0);
    } finally {
      await host.close();
    }
  });

  test('has no policy when the certificate is for another name', async () => {
    const host = await startPolicyHost(testCa().issue(['mta-sts.elsewhere.test', 'example.test']));
    try {
      const sts = new MtaStsResolver({ resolver: exampleZone().resolve, clock: new ManualClock(), logger: silentLogger(), httpsPort: host.port, ca: testCa().caPem });
      assert.equal(await sts.policyFor('example.test'), undefined);
      assert.equal(host.requests.length, 0);
    } finally {
      await host.close();
    }
  });

  test('has no policy when the policy host answers 404', async () => {
    const { policy, requests } = await policyWith({ status: 404, body: ENFORCE_POLICY });
    assert.equal(policy, undefined);
    assert.equal(requests, 1);
  });

  test('does not follow a redirect', async () => {
    const { policy, requests } = await policyWith({
      status: 301,
      headers: { 'content-type': 'text/plain', location: '/.well-known/mta-sts.txt?again' },
      body: ENFORCE_POLICY,
    });
    assert.equal(policy, undefined);
    assert.equal(requests, 1);
  });

  test('has no policy when the answer is not text/plain', async () => {
    assert.equal((await policyWith({ headers: { 'content-type': 'text/html' } })).policy, undefined);
    assert.equal((await policyWith({ headers: {} })).policy, undefined);
  });

  test('has no policy when the body is larger than 64 KiB', async () => {
    const padding = `x-padding: ${'a'.repeat(POLICY_BODY_LIMIT_BYTES)}\n`;
    assert.equal((await policyWith({ body: ENFORCE_POLICY + padding })).policy, undefined);
  });

  test('has no policy when the body is not a valid policy', async () => {
    assert.equal((await policyWith({ body: 'version: STSv1\nmode: enforce\nmax_age: 60\n' })).policy, undefined);
  });

  test('has no policy when the policy host has no address', async () => {
    const s = await scenario();
    try {
      s.zone.delete('mta-sts.example.test', 'A');
      assert.equal(await s.sts.policyFor('example.test'), undefined);
      assert.ok(s.zone.queries.includes('AAAA mta-sts.example.test'));
    } finally {
      await s.close();
    }
  });

  test('has no policy when the policy host does not answer in time', async () => {
    // A TCP listener that never completes a TLS handshake.
    const sockets = new Set<Socket>();
    const silent = createTcpServer((socket) => sockets.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const port = (silent.address() as AddressInfo).port;
      const sts = new MtaStsResolver({ resolver: exampleZone().resolve, clock: new ManualClock(), logger: silentLogger(), httpsPort: port, ca: testCa().caPem, timeoutMs: 200 });
      assert.equal(await sts.policyFor('example.test'), undefined);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });
});

describe('discovering whether a domain has a policy', () => {
  let host: PolicyHost;
  before(async () => {
    host = await startPolicyHost(policyHostTls());
  });
  after(() => host.close());

  function resolverFor(zone: ReturnType<typeof exampleZone>) {
    return new MtaStsResolver({ resolver: zone.resolve, clock: new ManualClock(), logger: silentLogger(), httpsPort: host.port, ca: testCa().caPem });
  }

  test('has no policy and fetches nothing when there is no TXT record', async () => {
    const before = host.requests.length;
    const zone = exampleZone().delete('_mta-sts.example.test', 'TXT');
    assert.equal(await resolverFor(zone).policyFor('example.test'), undefined);
    assert.equal(host.requests.length, before);
  });

  test('has no policy and fetches nothing when two v=STSv1 records are published', async () => {
    const before = host.requests.length;
    const zone = exampleZone().set('_mta-sts.example.test', 'TXT', [['v=STSv1; id=a1'], ['v=STSv1; id=b2']]);
    assert.equal(await resolverFor(zone).policyFor('example.test'), undefined);
    assert.equal(host.requests.length, before);
  });

  test('has no policy when the TXT lookup fails', async () => {
    const zone = exampleZone().set('_mta-sts.example.test', 'TXT', Object.assign(new Error('queryTxt ESERVFAIL'), { code: 'ESERVFAIL' }));
    assert.equal(await resolverFor(zone).policyFor('example.test'), undefined);
  });

  test('has no policy for an address literal', async () => {
    assert.equal(await resolverFor(exampleZone()).policyFor('127.0.0.1'), undefined);
  });
});
