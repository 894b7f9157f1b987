import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MAX_POLICY_AGE_SECONDS, parseMtaStsPolicy, policyIdFromTxtRecords } from '../../../src/delivery/mtaStsPolicy.js';

describe('parsing an MTA-STS policy file', () => {
  test('reads an enforce policy with several mx patterns and CRLF line ends', () => {
    const policy = parseMtaStsPolicy('version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmax_age: 604800\r\n');
    assert.deepEqual(policy, { mode: 'enforce', mx: ['mail.example.com', '*.example.net'], maxAgeSeconds: 604800 });
  });

  test('reads a testing policy with LF line ends, no final newline and fields in any order', () => {
    const policy = parseMtaStsPolicy('max_age: 86400\nmx: MX1.Example.COM.\nmode: testing\nversion: STSv1');
    assert.deepEqual(policy, { mode: 'testing', mx: ['mx1.example.com'], maxAgeSeconds: 86400 });
  });

  test('reads a none policy that lists no mx', () => {
    assert.deepEqual(parseMtaStsPolicy('version: STSv1\nmode: none\nmax_age: 0\n'), { mode: 'none', mx: [], maxAgeSeconds: 0 });
  });

  test('ignores unknown keys and white space after the colon and at line ends', () => {
    const policy = parseMtaStsPolicy('version:STSv1\nmode:\t enforce  \nreport_uri: https://example.com/x\nmx:  mail.example.com\t\nmax_age: 10\n');
    assert.deepEqual(policy, { mode: 'enforce', mx: ['mail.example.com'], maxAgeSeconds: 10 });
  });

  test('keeps the first of a duplicated field other than mx', () => {
    const policy = parseMtaStsPolicy('version: STSv1\nmode: testing\nmode: enforce\nmx: a.example.com\nmax_age: 5\nmax_age: 99\n');
    assert.equal(policy.mode, 'testing');
    assert.equal(policy.maxAgeSeconds, 5);
  });

  test('accepts the largest max_age the RFC allows', () => {
    const policy = parseMtaStsPolicy(`version: STSv1\nmode: none\nmax_age: ${MAX_POLICY_AGE_SECONDS}\n`);
    assert.equal(policy.maxAgeSeconds, 31_557_600);
  });

  const invalid: Array<[string, string, RegExp]> = [
    ['a policy without a version', 'mode: enforce\nmx: a.example.com\nmax_age: 60\n', /no version field/],
    ['a policy of another version', 'version: STSv2\nmode: enforce\nmx: a.example.com\nmax_age: 60\n', /version must be STSv1, got "STSv2"/],
    ['a policy with an unknown mode', 'version: STSv1\nmode: strict\nmx: a.example.com\nmax_age: 60\n', /mode must be enforce, testing or none, got "strict"/],
    ['a policy whose mode is in capitals', 'version: STSv1\nmode: ENFORCE\nmx: a.example.com\nmax_age: 60\n', /mode must be/],
    ['a policy without a mode', 'version: STSv1\nmx: a.example.com\nmax_age: 60\n', /no mode field/],
    ['an enforce policy without mx', 'version: STSv1\nmode: enforce\nmax_age: 60\n', /mode enforce has no mx field/],
    ['a testing policy without mx', 'version: STSv1\nmode: testing\nmax_age: 60\n', /mode testing has no mx field/],
    ['a policy without max_age', 'version: STSv1\nmode: enforce\nmx: a.example.com\n', /no max_age field/],
    ['a max_age above a year', 'version: STSv1\nmode: enforce\nmx: a.example.com\nmax_age: 31557601\n', /max_age must be whole seconds from 0 to 31557600, got "31557601"/],
    ['a negative max_age', 'version: STSv1\nmode: enforce\nmx: a.example.com\nmax_age: -1\n', /max_age must be/],
    ['a max_age with more than ten digits', 'version: STSv1\nmode: none\nmax_age: 00000000001\n', /max_age must be/],
    ['a max_age that is not a number', 'version: STSv1\nmode: enforce\nmx: a.example.com\nmax_age: 1d\n', /max_age must be/],
    ['an mx that is not a host name', 'version: STSv1\nmode: enforce\nmx: mail example.com\nmax_age: 60\n', /mx is not a host name/],
    ['an mx with a wildcard inside', 'version: STSv1\nmode: enforce\nmx: mail.*.example.com\nmax_age: 60\n', /mx is not a host name/],
    ['a line that is not a key and value', 'version: STSv1\nmode enforce\nmx: a.example.com\nmax_age: 60\n', /line 2 is not a "key: value" pair/],
    ['an HTML page', '<html><body>Not here</body></html>', /line 1 is not a "key: value" pair/],
  ];
  for (const [what, text, message] of invalid) {
    test(`refuses ${what}`, () => {
      assert.throws(() => parseMtaStsPolicy(text), message);
    });
  }
});

describe('reading the _mta-sts TXT record', () => {
  test('takes the id of the one v=STSv1 record', () => {
    assert.equal(policyIdFromTxtRecords([['v=STSv1; id=20160831085700Z;']]), '20160831085700Z');
  });

  test('joins a record split into several character-strings', () => {
    assert.equal(policyIdFromTxtRecords([['v=STSv1; i', 'd=abc123']]), 'abc123');
  });

  test('discards records that do not begin with v=STSv1', () => {
    assert.equal(policyIdFromTxtRecords([['google-site-verification=xyz'], ['v=spf1 -all'], ['v=STSv1;id=x1']]), 'x1');
  });

  test('ignores unknown fields and keeps the first id', () => {
    assert.equal(policyIdFromTxtRecords([['v=STSv1 ; ext=1 ; id=first; id=second']]), 'first');
  });

  test('finds no policy when two records begin with v=STSv1', () => {
    assert.equal(policyIdFromTxtRecords([['v=STSv1; id=one'], ['v=STSv1; id=two']]), undefined);
  });

  test('finds no policy in a record without an id or with an id that is not 1 to 32 letters and digits', () => {
    assert.equal(policyIdFromTxtRecords([['v=STSv1;']]), undefined);
    assert.equal(policyIdFromTxtRecords([['v=STSv1; id=']]), undefined);
    assert.equal(policyIdFromTxtRecords([['v=STSv1; id=has-dash']]), undefined);
    assert.equal(policyIdFromTxtRecords([[`v=STSv1; id=${'a'.repeat(33)}`]]), undefined);
  });

  test('finds no policy in a record of another version or with a field that is not key=value', () => {
    assert.equal(policyIdFromTxtRecords([['v=STSv10; id=abc']]), undefined);
    assert.equal(policyIdFromTxtRecords([['v=STSv1; id=abc; junk']]), undefined);
  });

  test('finds no policy when there are no records', () => {
    assert.equal(policyIdFromTxtRecords([]), undefined);
    assert.equal(policyIdFromTxtRecords(undefined), undefined);
  });
});
