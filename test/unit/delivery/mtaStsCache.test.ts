import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { scenario } from './mtaStsPolicyHost.js';

const TESTING_POLICY = 'version: STSv1\nmode: testing\nmx: new.example.test\nmax_age: 3600\n';
const HOUR_MS = 3_600_000;

describe('caching MTA-STS policies', () => {
  test('does not fetch again while the TXT id is unchanged and the policy is valid', async () => {
    const s = await scenario();
    try {
      const first = await s.sts.policyFor('example.test');
      s.clock.advance(HOUR_MS);
      const second = await s.sts.policyFor('example.test');
      assert.equal(second, first);
      assert.equal(s.host.requests.length, 1);
      // Shared with every caller, so no caller can change it for the others.
      assert.ok(Object.isFrozen(first) && Object.isFrozen(first?.mx));
    } finally {
      await s.close();
    }
  });

  test('fetches again when the TXT id changes', async () => {
    const s = await scenario();
    try {
      assert.equal((await s.sts.policyFor('example.test'))?.mode, 'enforce');
      s.zone.set('_mta-sts.example.test', 'TXT', [['v=STSv1; id=policy2']]);
      s.host.answer.body = TESTING_POLICY;
      const updated = await s.sts.policyFor('example.test');
      assert.deepEqual(updated, { id: 'policy2', mode: 'testing', mx: ['new.example.test'], maxAgeSeconds: 3600 });
      assert.equal(s.host.requests.length, 2);
    } finally {
      await s.close();
    }
  });

  test('keeps applying the cached policy when the fetch for a new id fails', async () => {
    const s = await scenario();
    try {
      await s.sts.policyFor('example.test');
      s.zone.set('_mta-sts.example.test', 'TXT', [['v=STSv1; id=policy2']]);
      s.host.answer.status = 500;
      const policy = await s.sts.policyFor('example.test');
      assert.equal(policy?.id, 'policy1');
      assert.equal(policy?.mode, 'enforce');
      assert.equal(s.host.requests.length, 2);
    } finally {
      await s.close();
    }
  });

  test('fetches again once max_age has passed', async () => {
    const s = await scenario({ body: TESTING_POLICY });
    try {
      await s.sts.policyFor('example.test');
      s.clock.advance(HOUR_MS - 1);
      await s.sts.policyFor('example.test');
      assert.equal(s.host.requests.length, 1);
      s.clock.advance(1);
      assert.equal((await s.sts.policyFor('example.test'))?.id, 'policy1');
      assert.equal(s.host.requests.length, 2);
    } finally {
      await s.close();
    }
  });

  test('has no policy once max_age has passed and the policy can no longer be fetched', async () => {
    const s = await scenario({ body: TESTING_POLICY });
    try {
      await s.sts.policyFor('example.test');
      s.clock.advance(HOUR_MS);
      s.host.answer.status = 404;
      assert.equal(await s.sts.policyFor('example.test'), undefined);
    } finally {
      await s.close();
    }
  });

  test('keeps applying the cached policy when the TXT record disappears', async () => {
    const s = await scenario();
    try {
      const first = await s.sts.policyFor('example.test');
      s.zone.delete('_mta-sts.example.test', 'TXT');
      s.clock.advance(HOUR_MS);
      assert.deepEqual(await s.sts.policyFor('example.test'), first);
      s.zone.set('_mta-sts.example.test', 'TXT', Object.assign(new Error('queryTxt ETIMEOUT'), { code: 'ETIMEOUT' }));
      assert.deepEqual(await s.sts.policyFor('example.test'), first);
      assert.equal(s.host.requests.length, 1);
    } finally {
      await s.close();
    }
  });

  test('forgets a policy whose TXT record is gone once max_age has passed', async () => {
    const s = await scenario();
    try {
      await s.sts.policyFor('example.test');
      s.zone.delete('_mta-sts.example.test', 'TXT');
      s.clock.advance(86_400_000);
      assert.equal(await s.sts.policyFor('example.test'), undefined);
    } finally {
      await s.close();
    }
  });

  test('shares one fetch among concurrent calls for a domain', async () => {
    const s = await scenario();
    try {
      const policies = await Promise.all([s.sts.policyFor('example.test'), s.sts.policyFor('EXAMPLE.test'), s.sts.policyFor('example.test.')]);
      assert.equal(s.host.requests.length, 1);
      assert.ok(policies.every((policy) => policy?.id === 'policy1'));
    } finally {
      await s.close();
    }
  });

  test('waits five minutes before trying a failed policy id again', async () => {
    const s = await scenario({ status: 503 });
    try {
      assert.equal(await s.sts.policyFor('example.test'), undefined);
      s.host.answer.status = 200;
      s.clock.advance(5 * 60_000 - 1);
      assert.equal(await s.sts.policyFor('example.test'), undefined);
      assert.equal(s.host.requests.length, 1);
      s.clock.advance(1);
      assert.equal((await s.sts.policyFor('example.test'))?.id, 'policy1');
      assert.equal(s.host.requests.length, 2);
    } finally {
      await s.close();
    }
  });

  test('tries a new policy id at once even when the previous one failed', async () => {
    const s = await scenario({ status: 503 });
    try {
      await s.sts.policyFor('example.test');
      s.host.answer.status = 200;
      s.zone.set('_mta-sts.example.test', 'TXT', [['v=STSv1; id=policy2']]);
      assert.equal((await s.sts.policyFor('example.test'))?.id, 'policy2');
    } finally {
      await s.close();
    }
  });

  test('forgets the oldest domain when more domains than configured have policies', async () => {
    const s = await scenario({}, { maxCachedDomains: 1 });
    try {
      s.zone.set('_mta-sts.other.test', 'TXT', [['v=STSv1; id=other1']]).set('mta-sts.other.test', 'A', ['127.0.0.1']);
      await s.sts.policyFor('example.test');
      assert.equal((await s.sts.policyFor('other.test'))?.id, 'other1');
      await s.sts.policyFor('other.test');
      assert.equal(s.host.requests.length, 2);
      await s.sts.policyFor('example.test');
      assert.equal(s.host.requests.length, 3);
    } finally {
      await s.close();
    }
  });
});
