import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { sampleMessage } from '../helpers/messages.js';
import { queuedIds, startWorldAndGateway, submit, waitForEmptyQueue, waitUntil, type MxWorldOptions } from '../helpers/mxWorld.js';
import type { ReceivedMessage } from '../helpers/upstream.js';

/**
 * What the sender hears back when direct delivery fails or drags on: bounces and delay
 * warnings (RFC 3464 delivery status notifications) arriving in alice's own mailbox, which
 * the gateway reaches like any other destination (a `via: relay` route for example.com).
 */

const MX = '127.0.0.2';

/** A zone where `domain` has one MX host, mx.<domain>, at MX. */
function oneMxZone(domain: string): MxWorldOptions['zone'] {
  return { zone: domain, mx: { [domain]: [{ preference: 10, exchange: `mx.${domain}` }] }, hosts: { [`mx.${domain}`]: [MX] } };
}

interface Part {
  headers: string;
  body: string;
}

/** A notification as its reader sees it: the top header block and the MIME parts. */
interface Report {
  headers: string;
  parts: Part[];
  /** The delivery-status part: the per-message fields, then one field map per recipient. */
  perMessage: Map<string, string>;
  perRecipient: Array<Map<string, string>>;
}

function splitHead(text: string): Part {
  const end = text.indexOf('\r\n\r\n');
  assert.ok(end >= 0, `no empty line after the header block: ${JSON.stringify(text.slice(0, 200))}`);
  return { headers: text.slice(0, end + 2), body: text.slice(end + 4) };
}

/** Fields of a header-like block, names lower case, folded lines unfolded (RFC 5322 section 2.2.3). */
function fields(block: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of block.replace(/\r\n[ \t]+/g, ' ').split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) map.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return map;
}

function parseReport(message: ReceivedMessage): Report {
  const { headers, body } = splitHead(message.raw.toString('latin1'));
  const contentType = fields(headers).get('content-type') ?? '';
  assert.match(contentType, /^multipart\/report;\s*report-type=delivery-status;/i);
  const boundary = /boundary="([^"]+)"/.exec(contentType)?.[1];
  assert.ok(boundary, `no boundary in ${contentType}`);
  const parts = body
    .split(`--${boundary}`)
    .slice(1, -1)
    .map((part) => splitHead(part.replace(/^\r\n/, '')));
  const status = parts.find((part) => /content-type:\s*message\/delivery-status/i.test(part.headers));
  assert.ok(status, 'a message/delivery-status part');
  const blocks = status.body.split(/\r\n\r\n/).filter((block) => block.trim() !== '');
  return { headers, parts, perMessage: fields(blocks[0]!), perRecipient: blocks.slice(1).map(fields) };
}

/** The checks every notification from this gateway to alice passes. */
function assertNotificationToAlice(message: ReceivedMessage, queueId: string): Report {
  assert.equal(message.from, '', 'sent with the null reverse-path, MAIL FROM:<> (RFC 5321 section 4.5.5)');
  assert.deepEqual(message.to, ['alice@example.com']);
  const report = parseReport(message);
  const head = fields(report.headers);
  assert.equal(head.get('from'), 'Mail Delivery System <MAILER-DAEMON@postern.test>');
  assert.equal(head.get('to'), '<alice@example.com>');
  assert.equal(head.get('auto-submitted'), 'auto-replied');
  assert.equal(report.perMessage.get('reporting-mta'), 'dns; postern.test');
  assert.equal(report.perMessage.get('x-postern-queue-id'), queueId);
  return report;
}

describe('bounces and delay warnings', () => {
  test('a recipient domain with a null MX fails at once, without a retry, and the sender gets a bounce with 5.1.10', async (t) => {
    const { world, postern, log } = await startWorldAndGateway(t, { zone: { zone: 'nomail.test', nullMx: ['nomail.test'] }, hosts: {} });

    const queueId = await submit(postern, ['bob@nomail.test']);

    const [bounce] = await world.mailbox.waitFor(1);
    const report = assertNotificationToAlice(bounce!, queueId);
    assert.equal(report.perRecipient.length, 1);
    const recipient = report.perRecipient[0]!;
    assert.equal(recipient.get('final-recipient'), 'rfc822; bob@nomail.test');
    assert.equal(recipient.get('action'), 'failed');
    assert.equal(recipient.get('status'), '5.1.10');
    assert.match(recipient.get('diagnostic-code') ?? '', /null MX/);
    await waitForEmptyQueue(postern);
    const attempts = log.filter((e) => e.msg === 'delivery attempt' && e.queueId === queueId);
    assert.equal(attempts.length, 1, 'one attempt, no retry');
    assert.equal(attempts[0]!.result, 'failed');
  });

  test('a recipient domain that does not exist fails at once, and the sender gets a bounce with 5.1.2', async (t) => {
    const { world, postern } = await startWorldAndGateway(t, { zone: oneMxZone('exists.test'), hosts: {} });

    const queueId = await submit(postern, ['bob@absent.exists.test']);

    const [bounce] = await world.mailbox.waitFor(1);
    const recipient = assertNotificationToAlice(bounce!, queueId).perRecipient;
    assert.deepEqual(
      recipient.map((r) => [r.get('final-recipient'), r.get('action'), r.get('status')]),
      [['rfc822; bob@absent.exists.test', 'failed', '5.1.2']],
    );
    assert.match(recipient[0]!.get('diagnostic-code') ?? '', /absent\.exists\.test: domain does not exist/);
    await waitForEmptyQueue(postern);
  });

  test('mixed replies to three recipients: each delivered one arrives once, the 451 one on the retry, the 550 one bounces', async (t) => {
    const { world, postern } = await startWorldAndGateway(t, {
      zone: oneMxZone('mixed.test'),
      hosts: {
        [MX]: {
          rcptReply: (address, seen) => {
            // smtp-server adds no enhanced status code of its own: the text carries it.
            if (address === 'later@mixed.test' && seen === 1) return { code: 451, message: '4.7.1 greylisted, try again later' };
            if (address === 'gone@mixed.test') return { code: 550, message: '5.1.1 no such user here' };
            return undefined;
          },
        },
      },
    });
    const mx = world.hosts[MX]!;

    const queueId = await submit(postern, ['ok@mixed.test', 'later@mixed.test', 'gone@mixed.test'], sampleMessage('mixed'));

    await mx.waitFor(2);
    const [bounce] = await world.mailbox.waitFor(1);
    await waitForEmptyQueue(postern);

    const copiesFor = (address: string) => mx.messages.filter((m) => m.to.includes(address)).length;
    assert.equal(copiesFor('ok@mixed.test'), 1);
    assert.equal(copiesFor('later@mixed.test'), 1);
    assert.equal(copiesFor('gone@mixed.test'), 0);
    assert.equal(mx.messages.length, 2);
    const asked = (address: string) => mx.rcptSeen.filter((r) => r.address === address).length;
    assert.equal(asked('later@mixed.test'), 2, 'the deferred recipient is asked again on the retry');
    assert.equal(asked('ok@mixed.test'), 1, 'a delivered recipient is never asked again');
    assert.equal(asked('gone@mixed.test'), 1, 'a refused recipient is never asked again');

    const report = assertNotificationToAlice(bounce!, queueId);
    assert.match(fields(report.headers).get('subject') ?? '', /Undelivered Mail Returned to Sender/);
    assert.equal(report.perRecipient.length, 1, 'the bounce names the failed recipient only');
    const recipient = report.perRecipient[0]!;
    assert.equal(recipient.get('final-recipient'), 'rfc822; gone@mixed.test');
    assert.equal(recipient.get('action'), 'failed');
    assert.equal(recipient.get('status'), '5.1.1');
    assert.equal(recipient.get('remote-mta'), 'dns; mx.mixed.test');
    assert.equal(recipient.get('diagnostic-code'), 'smtp; 550 5.1.1 no such user here');
    const returned = report.parts.find((part) => /text\/rfc822-headers/i.test(part.headers));
    assert.match(returned?.body ?? '', /^Subject: mixed\r$/m, 'the original header block is returned');
    assert.equal(world.mailbox.messages.length, 1, 'one bounce, nothing else');
  });

  test('a bounce the sender\'s server refuses is dropped: no bounce of a bounce, and the queue ends empty', async (t) => {
    const { world, postern, log } = await startWorldAndGateway(t, {
      zone: oneMxZone('refused.test'),
      hosts: { [MX]: { rcptReply: () => ({ code: 550, message: '5.1.1 no such user here' }) } },
      mailbox: { rcptReply: () => ({ code: 550, message: '5.2.1 mailbox disabled' }) },
    });

    const queueId = await submit(postern, ['gone@refused.test']);

    await waitForEmptyQueue(postern);
    assert.deepEqual(world.mailbox.rcptSeen, [{ from: '', address: 'alice@example.com' }], 'the bounce was offered once, from <>');
    assert.equal(world.mailbox.messages.length, 0);
    assert.equal(world.hosts[MX]!.rcptSeen.length, 1, 'nothing goes back to the original recipient\'s host either');
    const bounceId = log.find((e) => e.msg === 'bounce queued for the sender' && e.queueId === queueId)?.dsnQueueId;
    assert.ok(typeof bounceId === 'string', 'a bounce was queued for the original message');
    const dropped = log.find((e) => e.msg === 'recipient failed: refused by the next hop' && e.queueId === bounceId);
    assert.ok(dropped, 'the failed bounce is logged');
    assert.equal(dropped.bounce, false, 'and logged as getting no bounce of its own');
    assert.equal(dropped.reply, '550 5.2.1 mailbox disabled');
  });

  test('a message still deferred after delayWarning brings the sender one delay warning, and only one', async (t) => {
    const { world, postern } = await startWorldAndGateway(
      t,
      { zone: oneMxZone('slow.test'), hosts: { [MX]: { rcptReply: () => ({ code: 451, message: '4.2.1 mailbox busy, try again later' }) } } },
      { delayWarning: '1s' },
    );
    const mx = world.hosts[MX]!;

    const queueId = await submit(postern, ['slow@slow.test']);

    const [warning] = await world.mailbox.waitFor(1);
    const report = assertNotificationToAlice(warning!, queueId);
    assert.match(fields(report.headers).get('subject') ?? '', /Delayed Mail/);
    assert.deepEqual(
      report.perRecipient.map((r) => [r.get('final-recipient'), r.get('action'), r.get('status')]),
      [['rfc822; slow@slow.test', 'delayed', '4.2.1']],
    );
    assert.ok(report.perRecipient[0]!.has('will-retry-until'));
    // Three more attempts after the warning, each one a chance for a second warning.
    const askedAtWarning = mx.rcptSeen.length;
    await mx.waitForRcpt(askedAtWarning + 3);
    // A second warning would now be in the queue or in the mailbox: the queue is waited on
    // until it holds the original alone (the delivered warning leaves it), then the mailbox read.
    let queued: string[] = [];
    await waitUntil(
      'the queue holds the original message alone',
      async () => {
        queued = await queuedIds(postern);
        return queued.length === 1 && queued[0] === queueId ? true : undefined;
      },
      () => queued,
    );
    assert.equal(world.mailbox.rcptSeen.length, 1, 'one warning only');
    assert.equal(world.mailbox.messages.length, 1);
    assert.equal(mx.messages.length, 0);
  });
});
