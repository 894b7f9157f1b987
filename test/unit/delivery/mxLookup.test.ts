import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_MAX_ADDRESSES, lookupMx, type MxLookupResult } from '../../../src/delivery/mxLookup.js';
import type { DnsResolver } from '../../../src/policy/types.js';

/**
 * A zone in the shape Node's resolver answers: "name/TYPE" -> records, or an error code the
 * query rejects with. A name/type not listed is NXDOMAIN, as on a real server for a name that
 * has no records at all. Every query is recorded, and answers arrive on a later turn of the
 * event loop, as over the network.
 */
type FakeZone = Record<string, unknown[] | { error: string }>;

function fakeResolver(zone: FakeZone): DnsResolver & { queries: string[] } {
  const queries: string[] = [];
  const resolver = (name: string, rrtype: string): Promise<unknown> => {
    const key = `${name}/${rrtype}`;
    queries.push(key);
    const answer = zone[key];
    return new Promise((resolve, reject) =>
      setImmediate(() => {
        if (answer === undefined) reject(Object.assign(new Error(`queryFake ENOTFOUND ${name}`), { code: 'ENOTFOUND' }));
        else if (Array.isArray(answer)) resolve(answer);
        else reject(Object.assign(new Error(`queryFake ${answer.error} ${name}`), { code: answer.error }));
      }),
    );
  };
  return Object.assign(resolver, { queries });
}

const NODATA = { error: 'ENODATA' };

function mx(exchange: string, priority: number): { exchange: string; priority: number } {
  return { exchange, priority };
}

function hostsOf(result: MxLookupResult): Array<[string, string[]]> {
  assert.ok(result.ok, `expected hosts, got ${JSON.stringify(result)}`);
  return result.hosts.map((host) => [host.name, host.addresses]);
}

function failureOf(result: MxLookupResult): { permanent: boolean; enhancedCode: string; reply: string } {
  assert.ok(!result.ok, `expected a failure, got ${JSON.stringify(result)}`);
  return result;
}

describe('MX hosts of a domain', () => {
  test('hosts come lowest preference first, each with its IPv4 addresses before its IPv6 ones', async () => {
    const resolver = fakeResolver({
      'example.test/MX': [mx('backup.example.test', 20), mx('primary.example.test', 10)],
      'primary.example.test/A': ['192.0.2.1'],
      'primary.example.test/AAAA': ['2001:db8::1'],
      'backup.example.test/A': ['192.0.2.2'],
      'backup.example.test/AAAA': NODATA,
    });
    const result = await lookupMx('example.test', { resolver });
    assert.deepEqual(result, {
      ok: true,
      hosts: [
        { name: 'primary.example.test', preference: 10, addresses: ['192.0.2.1', '2001:db8::1'], implicit: false },
        { name: 'backup.example.test', preference: 20, addresses: ['192.0.2.2'], implicit: false },
      ],
    });
  });

  test('hosts of equal preference are ordered by the injected randomness, whatever order DNS listed them in', async () => {
    const zone: FakeZone = {
      'example.test/MX': [mx('c.example.test', 10), mx('a.example.test', 10), mx('b.example.test', 10), mx('z.example.test', 20)],
      'a.example.test/A': ['192.0.2.1'],
      'b.example.test/A': ['192.0.2.2'],
      'c.example.test/A': ['192.0.2.3'],
      'z.example.test/A': ['192.0.2.26'],
    };
    for (const name of ['a', 'b', 'c', 'z']) zone[`${name}.example.test/AAAA`] = NODATA;
    const names = async (random: () => number, records = zone['example.test/MX'] as unknown[]) =>
      hostsOf(await lookupMx('example.test', { resolver: fakeResolver({ ...zone, 'example.test/MX': records }), random })).map(([name]) => name);

    // Fisher-Yates over [a, b, c]: random() = 0 always swaps with the first, giving [b, c, a];
    // a value just under 1 always swaps an item with itself, leaving [a, b, c].
    assert.deepEqual(await names(() => 0), ['b.example.test', 'c.example.test', 'a.example.test', 'z.example.test']);
    assert.deepEqual(await names(() => 0.999), ['a.example.test', 'b.example.test', 'c.example.test', 'z.example.test']);
    const reversed = [...(zone['example.test/MX'] as unknown[])].reverse();
    assert.deepEqual(await names(() => 0, reversed), ['b.example.test', 'c.example.test', 'a.example.test', 'z.example.test']);
  });

  test('exchange names are lower-cased and lose their trailing dot, and one listed twice keeps its lowest preference', async () => {
    const resolver = fakeResolver({
      'example.test/MX': [mx('MX.Example.TEST.', 30), mx('mx.example.test', 5)],
      'mx.example.test/A': ['192.0.2.1'],
      'mx.example.test/AAAA': NODATA,
    });
    const result = await lookupMx('example.test', { resolver });
    assert.deepEqual(result, { ok: true, hosts: [{ name: 'mx.example.test', preference: 5, addresses: ['192.0.2.1'], implicit: false }] });
  });

  test('every exchange has its A and AAAA asked at once, not one after the other', async () => {
    const resolver = fakeResolver({
      'example.test/MX': [mx('one.example.test', 10), mx('two.example.test', 20)],
      'one.example.test/A': ['192.0.2.1'],
      'one.example.test/AAAA': NODATA,
      'two.example.test/A': ['192.0.2.2'],
      'two.example.test/AAAA': NODATA,
    });
    let askedBeforeFirstAnswer: string[] | undefined;
    const watching: DnsResolver = (name, rrtype) => {
      const answer = resolver(name, rrtype);
      // Registered before the caller awaits it, so this runs as the first address answer
      // arrives, before the caller can react to it: what was asked by then was asked at once.
      if (rrtype !== 'MX') {
        const snapshot = () => {
          askedBeforeFirstAnswer ??= resolver.queries.filter((query) => !query.endsWith('/MX'));
        };
        answer.then(snapshot, snapshot);
      }
      return answer;
    };
    await lookupMx('example.test', { resolver: watching });
    assert.deepEqual([...(askedBeforeFirstAnswer ?? [])].sort(), ['one.example.test/A', 'one.example.test/AAAA', 'two.example.test/A', 'two.example.test/AAAA']);
  });

  test('an exchange published as an IP address is taken as its own address', async () => {
    const resolver = fakeResolver({
      'example.test/MX': [mx('192.0.2.7', 10)],
    });
    const result = await lookupMx('example.test', { resolver });
    assert.deepEqual(result, { ok: true, hosts: [{ name: '192.0.2.7', preference: 10, addresses: ['192.0.2.7'], implicit: false }] });
    assert.deepEqual(resolver.queries, ['example.test/MX']);
  });
});

describe('null MX (RFC 7505)', () => {
  test('a domain whose only MX is the null MX fails for good with 5.1.10', async () => {
    const resolver = fakeResolver({ 'nomail.test/MX': [mx('', 0)] });
    const failure = failureOf(await lookupMx('nomail.test', { resolver }));
    assert.equal(failure.permanent, true);
    assert.equal(failure.enhancedCode, '5.1.10');
    assert.match(failure.reply, /^nomail\.test: .*accepts no mail.*null MX/);
    // No fall back to the domain's own addresses.
    assert.deepEqual(resolver.queries, ['nomail.test/MX']);
  });

  test('a null MX written with its root dot counts as the null MX too', async () => {
    const resolver = fakeResolver({ 'nomail.test/MX': [mx('.', 0)] });
    assert.equal(failureOf(await lookupMx('nomail.test', { resolver })).enhancedCode, '5.1.10');
  });

  test('a null MX published beside real MX records is ignored', async () => {
    const resolver = fakeResolver({
      'mixed.test/MX': [mx('', 0), mx('mx.mixed.test', 10)],
      'mx.mixed.test/A': ['192.0.2.1'],
      'mx.mixed.test/AAAA': NODATA,
    });
    assert.deepEqual(hostsOf(await lookupMx('mixed.test', { resolver })), [['mx.mixed.test', ['192.0.2.1']]]);
  });
});

describe('domains without MX records', () => {
  test('a domain that does not exist fails for good with 5.1.2', async () => {
    const failure = failureOf(await lookupMx('example.invalid', { resolver: fakeResolver({}) }));
    assert.deepEqual(failure, { ok: false, permanent: true, enhancedCode: '5.1.2', reply: 'example.invalid: domain does not exist (NXDOMAIN)' });
  });

  test('a domain with no MX records is its own mail host, at its A and AAAA addresses (implicit MX)', async () => {
    const resolver = fakeResolver({
      'plain.test/MX': NODATA,
      'plain.test/A': ['192.0.2.9'],
      'plain.test/AAAA': ['2001:db8::9'],
    });
    const result = await lookupMx('plain.test', { resolver });
    assert.deepEqual(result, { ok: true, hosts: [{ name: 'plain.test', preference: 0, addresses: ['192.0.2.9', '2001:db8::9'], implicit: true }] });
  });

  test('a domain with no MX and only an AAAA record is reached over IPv6', async () => {
    const resolver = fakeResolver({ 'v6.test/MX': NODATA, 'v6.test/A': NODATA, 'v6.test/AAAA': ['2001:db8::6'] });
    assert.deepEqual(hostsOf(await lookupMx('v6.test', { resolver })), [['v6.test', ['2001:db8::6']]]);
  });

  test('a domain with no MX, A or AAAA records fails for good with 5.1.2', async () => {
    const resolver = fakeResolver({ 'empty.test/MX': NODATA, 'empty.test/A': NODATA, 'empty.test/AAAA': NODATA });
    const failure = failureOf(await lookupMx('empty.test', { resolver }));
    assert.equal(failure.permanent, true);
    assert.equal(failure.enhancedCode, '5.1.2');
    assert.match(failure.reply, /^empty\.test: domain has no MX, A or AAAA records$/);
  });

  test('a domain with no MX whose address lookup times out is deferred with 4.4.3', async () => {
    const resolver = fakeResolver({ 'slow.test/MX': NODATA, 'slow.test/A': { error: 'ETIMEOUT' }, 'slow.test/AAAA': NODATA });
    const failure = failureOf(await lookupMx('slow.test', { resolver }));
    assert.equal(failure.permanent, false);
    assert.equal(failure.enhancedCode, '4.4.3');
    assert.match(failure.reply, /ETIMEOUT/);
  });
});

describe('temporary DNS failures', () => {
  for (const code of ['ETIMEOUT', 'ESERVFAIL', 'ECONNREFUSED', 'EREFUSED', 'ESOMETHINGNEW']) {
    test(`an MX query failing with ${code} is deferred with 4.4.3 and the code in the reply`, async () => {
      const failure = failureOf(await lookupMx('example.test', { resolver: fakeResolver({ 'example.test/MX': { error: code } }) }));
      assert.deepEqual(failure, { ok: false, permanent: false, enhancedCode: '4.4.3', reply: `example.test: MX lookup failed temporarily (${code})` });
    });
  }

  test('a resolver that throws something without a code is a temporary failure too', async () => {
    const resolver: DnsResolver = async () => {
      throw new Error('socket hang up');
    };
    const failure = failureOf(await lookupMx('example.test', { resolver }));
    assert.equal(failure.permanent, false);
    assert.match(failure.reply, /socket hang up/);
  });
});

describe('exchanges without addresses', () => {
  test('an exchange whose name does not resolve is skipped and the next one used', async () => {
    const resolver = fakeResolver({
      'example.test/MX': [mx('gone.example.test', 10), mx('ok.example.test', 20)],
      'ok.example.test/A': ['192.0.2.2'],
      'ok.example.test/AAAA': NODATA,
    });
    assert.deepEqual(hostsOf(await lookupMx('example.test', { resolver })), [['ok.example.test', ['192.0.2.2']]]);
  });

  test('an exchange whose AAAA lookup fails is still tried at its IPv4 address', async () => {
    const resolver = fakeResolver({
      'example.test/MX': [mx('mx.example.test', 10)],
      'mx.example.test/A': ['192.0.2.1'],
      'mx.example.test/AAAA': { error: 'ESERVFAIL' },
    });
    assert.deepEqual(hostsOf(await lookupMx('example.test', { resolver })), [['mx.example.test', ['192.0.2.1']]]);
  });

  test('when no exchange has an address the failure is permanent 5.4.4 and names each one', async () => {
    const resolver = fakeResolver({
      'example.test/MX': [mx('gone.example.test', 10), mx('bare.example.test', 20)],
      'bare.example.test/A': NODATA,
      'bare.example.test/AAAA': NODATA,
    });
    const failure = failureOf(await lookupMx('example.test', { resolver }));
    assert.equal(failure.permanent, true);
    assert.equal(failure.enhancedCode, '5.4.4');
    assert.match(failure.reply, /^no MX host of example\.test has an address/);
    assert.match(failure.reply, /gone\.example\.test does not exist/);
    assert.match(failure.reply, /bare\.example\.test has no A or AAAA records/);
    // RFC 5321 section 5.1: unusable MX records are an error, not a reason to try the domain's A.
    assert.ok(!resolver.queries.includes('example.test/A'));
  });

  test('when no exchange has an address and one lookup failed temporarily the failure is deferred with 4.4.3', async () => {
    const resolver = fakeResolver({
      'example.test/MX': [mx('gone.example.test', 10), mx('slow.example.test', 20)],
      'slow.example.test/A': { error: 'ETIMEOUT' },
      'slow.example.test/AAAA': NODATA,
    });
    const failure = failureOf(await lookupMx('example.test', { resolver }));
    assert.equal(failure.permanent, false);
    assert.equal(failure.enhancedCode, '4.4.3');
    assert.match(failure.reply, /slow\.example\.test A\/AAAA lookup failed temporarily \(ETIMEOUT\)/);
  });
});

describe('the domain asked for', () => {
  test('an internationalised domain is queried in its A-label form, lower case and without its trailing dot', async () => {
    const resolver = fakeResolver({
      'xn--bcher-kva.example/MX': NODATA,
      'xn--bcher-kva.example/A': ['192.0.2.5'],
      'xn--bcher-kva.example/AAAA': NODATA,
    });
    const result = await lookupMx('Bücher.Example.', { resolver });
    assert.deepEqual(hostsOf(result), [['xn--bcher-kva.example', ['192.0.2.5']]]);
    assert.equal(resolver.queries[0], 'xn--bcher-kva.example/MX');
  });

  test('an IPv4 address literal is the one host, without any DNS query', async () => {
    const resolver = fakeResolver({});
    const result = await lookupMx('[192.0.2.1]', { resolver });
    assert.deepEqual(result, { ok: true, hosts: [{ name: '192.0.2.1', preference: 0, addresses: ['192.0.2.1'], implicit: false }] });
    assert.deepEqual(resolver.queries, []);
  });

  test('an IPv6 address literal is the one host, without any DNS query', async () => {
    const resolver = fakeResolver({});
    assert.deepEqual(hostsOf(await lookupMx('[IPv6:2001:DB8::1]', { resolver })), [['2001:db8::1', ['2001:db8::1']]]);
    assert.deepEqual(resolver.queries, []);
  });

  for (const literal of ['[192.0.2.256]', '[2001:db8::1]', '[IPv6:192.0.2.1]', '[x400:whatever]', '[]']) {
    test(`the malformed or unsupported address literal ${literal} fails for good with 5.1.2`, async () => {
      const resolver = fakeResolver({});
      const failure = failureOf(await lookupMx(literal, { resolver }));
      assert.equal(failure.permanent, true);
      assert.equal(failure.enhancedCode, '5.1.2');
      assert.deepEqual(resolver.queries, []);
    });
  }

  for (const name of ['', 'a..example', 'bad name.example', '0x7f.1', '1.2.3', `${'a'.repeat(64)}.example`]) {
    test(`"${name}" is not a domain name and fails for good with 5.1.2 without a query`, async () => {
      const resolver = fakeResolver({});
      const failure = failureOf(await lookupMx(name, { resolver }));
      assert.equal(failure.permanent, true);
      assert.equal(failure.enhancedCode, '5.1.2');
      assert.deepEqual(resolver.queries, []);
    });
  }
});

describe('the address limit', () => {
  function manyAddresses(): FakeZone {
    return {
      'big.test/MX': [mx('one.big.test', 10), mx('two.big.test', 20), mx('three.big.test', 30)],
      'one.big.test/A': ['192.0.2.1', '192.0.2.2'],
      'one.big.test/AAAA': ['2001:db8::1'],
      'two.big.test/A': ['192.0.2.3', '192.0.2.4'],
      'two.big.test/AAAA': NODATA,
      'three.big.test/A': ['192.0.2.5'],
      'three.big.test/AAAA': NODATA,
    };
  }

  test('addresses beyond maxAddresses are cut, keeping the order, and a host left with none is dropped', async () => {
    const result = await lookupMx('big.test', { resolver: fakeResolver(manyAddresses()), maxAddresses: 4 });
    assert.deepEqual(hostsOf(result), [
      ['one.big.test', ['192.0.2.1', '192.0.2.2', '2001:db8::1']],
      ['two.big.test', ['192.0.2.3']],
    ]);
  });

  test(`without maxAddresses at most ${DEFAULT_MAX_ADDRESSES} addresses are returned`, async () => {
    const a = Array.from({ length: 12 }, (_, i) => `192.0.2.${i + 1}`);
    const resolver = fakeResolver({ 'wide.test/MX': [mx('mx.wide.test', 10)], 'mx.wide.test/A': a, 'mx.wide.test/AAAA': NODATA });
    assert.deepEqual(hostsOf(await lookupMx('wide.test', { resolver })), [['mx.wide.test', a.slice(0, DEFAULT_MAX_ADDRESSES)]]);
  });

  test('an address shared by two exchanges is listed once, under the first', async () => {
    const resolver = fakeResolver({
      'shared.test/MX': [mx('a.shared.test', 10), mx('b.shared.test', 20), mx('c.shared.test', 30)],
      'a.shared.test/A': ['192.0.2.1'],
      'a.shared.test/AAAA': NODATA,
      'b.shared.test/A': ['192.0.2.1'],
      'b.shared.test/AAAA': NODATA,
      'c.shared.test/A': ['192.0.2.1', '192.0.2.3'],
      'c.shared.test/AAAA': NODATA,
    });
    assert.deepEqual(hostsOf(await lookupMx('shared.test', { resolver })), [
      ['a.shared.test', ['192.0.2.1']],
      ['c.shared.test', ['192.0.2.3']],
    ]);
  });

  test('a maxAddresses below one is refused as a bad argument', async () => {
    await assert.rejects(lookupMx('example.test', { resolver: fakeResolver({}), maxAddresses: 0 }), RangeError);
  });
});
