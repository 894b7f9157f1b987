import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ALICE, gatewayWithUpstream } from '../helpers/gateway.js';
import { SmtpTestClient, authenticatedClient } from '../helpers/smtpClient.js';

describe('nothing is relayed without TLS and AUTH', () => {
  // A short lockout so the test can watch it end: 3 failures within 2s lock for 1s.
  const fixture = gatewayWithUpstream('auth: { usersFile: users.yaml, failureDelay: 50ms, lockout: { failures: 3, window: 2s, duration: 1s } }');

  async function plainSession(): Promise<SmtpTestClient> {
    const client = await SmtpTestClient.connect(fixture.postern.submissionPort);
    const greeting = await client.greeting();
    assert.match(greeting.last, /^220 postern\.test ESMTP/);
    return client;
  }

  test('before STARTTLS, EHLO offers STARTTLS but not AUTH, and AUTH is refused', async () => {
    const client = await plainSession();
    const ehlo = await client.ehlo();
    assert.equal(ehlo.code, 250);
    assert.equal(ehlo.lines[0]?.startsWith('postern.test'), true);
    assert.ok(ehlo.lines.includes('STARTTLS'));
    assert.equal(ehlo.lines.some((l) => l.startsWith('AUTH')), false, `AUTH advertised before TLS: ${ehlo.lines.join(' | ')}`);
    const auth = await client.authPlain(ALICE.user, ALICE.password);
    assert.equal(auth.code, 500, auth.last);
    await client.quit();
  });

  test('before STARTTLS, MAIL is refused with 530 5.7.0 and NOOP, RSET still work', async () => {
    const client = await plainSession();
    await client.ehlo();
    const mail = await client.command('MAIL FROM:<alice@example.com>');
    assert.equal(mail.last, '530 5.7.0 Must issue a STARTTLS command first');
    assert.equal((await client.command('NOOP')).code, 250);
    assert.equal((await client.command('RSET')).code, 250);
    await client.quit();
  });

  test('after STARTTLS, AUTH is offered with PLAIN and LOGIN, and MAIL without AUTH gets 530 5.7.0', async () => {
    const client = await plainSession();
    await client.ehlo();
    await client.startTls();
    const ehlo = await client.ehlo();
    assert.ok(ehlo.lines.includes('AUTH PLAIN LOGIN'), ehlo.lines.join(' | '));
    assert.equal(ehlo.lines.includes('STARTTLS'), false);
    const mail = await client.command('MAIL FROM:<alice@example.com>');
    assert.equal(mail.last, '530 5.7.0 Authentication required');
    await client.quit();
  });

  test('VRFY and EXPN are disabled', async () => {
    const client = await authenticatedClient(fixture.postern.submissionPort, ALICE);
    for (const command of ['VRFY alice', 'EXPN staff']) {
      const reply = await client.command(command);
      assert.equal(reply.code, 500, `${command}: ${reply.last}`);
    }
    await client.quit();
  });

  test('a wrong password and an unknown user get the same 535 5.7.8', async () => {
    const client = await plainSession();
    await client.ehlo();
    await client.startTls();
    await client.ehlo();
    const wrong = await client.authPlain(ALICE.user, 'wrong password');
    const unknown = await client.authPlain('mallory', 'whatever');
    assert.equal(wrong.last, '535 5.7.8 Authentication credentials invalid');
    assert.equal(unknown.last, wrong.last);
    await client.quit();
  });

  test('PLAIN with an authorization identity other than the user is refused', async () => {
    const client = await plainSession();
    await client.ehlo();
    await client.startTls();
    await client.ehlo();
    const reply = await client.authPlain(ALICE.user, ALICE.password, 'postmaster');
    assert.equal(reply.code, 535);
    await client.quit();
  });

  test('after too many failures the user is locked out with 454 4.7.0, even with the right password, until the lockout ends', async () => {
    const client = await plainSession();
    await client.ehlo();
    await client.startTls();
    await client.ehlo();
    // The tests above already spent failures from this address; use a user name of our own and
    // count from the per-user side: three failures lock it.
    const victim = { user: 'alice', password: ALICE.password };
    let reply = await client.authPlain(victim.user, 'nope 1');
    for (let i = 2; i <= 3 && reply.code === 535; i++) reply = await client.authPlain(victim.user, `nope ${i}`);
    const locked = await client.authPlain(victim.user, victim.password);
    assert.equal(locked.last, '454 4.7.0 Too many failed logins, try again later');
    await client.quit();

    // The lock lasts 1s from the failure that reached the limit; well within 5s the right
    // password works again (each try is one attempt, far below the limit in a new window).
    const deadline = Date.now() + 5000;
    let code = 0;
    while (code !== 235 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 400));
      const later = await SmtpTestClient.connect(fixture.postern.submissionsPort, { implicitTls: true });
      await later.greeting();
      await later.ehlo();
      code = (await later.authPlain(victim.user, victim.password)).code;
      if (code === 235) assert.equal((await later.command('MAIL FROM:<alice@example.com>')).code, 250);
      await later.quit();
    }
    assert.equal(code, 235, 'the lockout ended');
  });
});
