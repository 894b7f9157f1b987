import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import type { DNSResolver } from 'mailauth';
import { DkimKeyring, parseDkimPrivateKey } from '../../../src/dkim/dkimKeys.js';
import { DkimSigner, type SignInput } from '../../../src/dkim/dkimSigner.js';
import { dkimRecordName, dkimRecordText } from '../../../src/dkim/dnsRecord.js';
import { ManualClock, systemClock } from '../../../src/util/clock.js';
import { silentLogger } from '../../../src/util/logger.js';
import { keyConfig, keyDirectory, newKeyPem, writeKeyFile } from '../../helpers/dkimFixtures.js';

const logger = silentLogger();
const RECEIVED = 'Received: from client.example.test ([192.0.2.1])\r\n\tby postern.test with ESMTPSA id 01ABC;\r\n\tMon, 30 Nov 2026 09:00:00 +0000\r\n';

function message(headers: string[], body = 'Hello Bob,\r\nBye.\r\n'): string {
  return `${headers.join('\r\n')}\r\n\r\n${body}`;
}

const BASIC = message(['From: Alice <alice@example.com>', 'To: Bob <bob@example.net>', 'Subject: Hello', 'Date: Mon, 30 Nov 2026 09:00:00 +0000', 'Message-ID: <1@example.com>']);

function input(text: string | Buffer, from = ['Alice <alice@example.com>'], prepended = RECEIVED): SignInput {
  return { from, prepended, open: () => Readable.from([Buffer.from(text)]) };
}

/** A signature field's tags, unfolded. */
function tags(field: string): Map<string, string> {
  const value = field.replace(/^DKIM-Signature:/i, '').replace(/\r\n[ \t]/g, ' ');
  return new Map(
    value
      .split(';')
      .map((part) => part.trim())
      .filter(Boolean)
      .map((part) => [part.slice(0, part.indexOf('=')).trim(), part.slice(part.indexOf('=') + 1).replace(/\s+/g, '')]),
  );
}

/** The signature lines of a sign() result, each still folded. */
function fields(signature: string): string[] {
  return signature.split(/\r\n(?![ \t])/).filter(Boolean);
}

describe('the DKIM signer', () => {
  let dir: string;
  let remove: () => Promise<void>;
  let rsaPem: string;
  let edPem: string;
  let keyring: DkimKeyring;
  let dualKeyring: DkimKeyring;
  const clock = new ManualClock(Date.UTC(2026, 10, 30, 9, 0, 0));
  before(async () => {
    ({ dir, remove } = await keyDirectory());
    rsaPem = newKeyPem('rsa');
    edPem = newKeyPem('ed25519');
    const rsa = await writeKeyFile(dir, 'rsa.key', rsaPem);
    const ed = await writeKeyFile(dir, 'ed.key', edPem);
    keyring = new DkimKeyring({ keys: [keyConfig('example.com', 's1', rsa)], logger, watch: false });
    dualKeyring = new DkimKeyring({ keys: [keyConfig('example.com', 's1', rsa), keyConfig('example.com', 'e1', ed)], logger, watch: false });
  });
  after(() => remove());

  test('a message From a domain with a key gets one folded DKIM-Signature line naming the key, relaxed/relaxed, and the time from the clock', async () => {
    const signature = await new DkimSigner({ keyring, clock, logger }).sign(input(BASIC));
    assert.match(signature, /^DKIM-Signature: /);
    assert.ok(signature.endsWith('\r\n'));
    for (const line of signature.slice(0, -2).split('\r\n').slice(1)) assert.match(line, /^[ \t]/, 'continuation lines are folded');
    const t = tags(signature);
    assert.equal(t.get('d'), 'example.com');
    assert.equal(t.get('s'), 's1');
    assert.equal(t.get('a'), 'rsa-sha256');
    assert.equal(t.get('c'), 'relaxed/relaxed');
    assert.equal(t.get('t'), String(Date.UTC(2026, 10, 30, 9, 0, 0) / 1000));
    assert.equal(t.has('x'), false, 'no expiry by default');
  });

  test('h= lists the signed fields present, then From, To, Subject, Date and Message-ID once more', async () => {
    const text = message(['From: alice@example.com', 'To: bob@example.net', 'Subject: Hi', 'Date: Mon, 30 Nov 2026 09:00:00 +0000', 'Message-ID: <2@example.com>', 'X-Mailer: test', 'MIME-Version: 1.0']);
    const h = tags(await new DkimSigner({ keyring, clock, logger }).sign(input(text))).get('h')!.toLowerCase().split(':');
    assert.deepEqual(h, ['mime-version', 'message-id', 'date', 'subject', 'to', 'from', 'from', 'to', 'subject', 'date', 'message-id']);
  });

  test('Cc and Reply-To are over-signed when present, and not listed when absent', async () => {
    const text = message(['From: alice@example.com', 'To: bob@example.net', 'Cc: carol@example.net', 'Reply-To: team@example.com', 'Subject: Hi']);
    const h = tags(await new DkimSigner({ keyring, clock, logger }).sign(input(text))).get('h')!.toLowerCase().split(':');
    assert.equal(h.filter((name) => name === 'cc').length, 2);
    assert.equal(h.filter((name) => name === 'reply-to').length, 2);
    const without = tags(await new DkimSigner({ keyring, clock, logger }).sign(input(BASIC))).get('h')!.toLowerCase().split(':');
    assert.equal(without.includes('cc'), false);
    assert.equal(without.includes('reply-to'), false);
  });

  test('Received and Return-Path are never signed', async () => {
    const text = message(['Return-Path: <alice@example.com>', 'Received: from a by b; Mon, 30 Nov 2026 08:59:00 +0000', 'From: alice@example.com', 'Subject: Hi']);
    const h = tags(await new DkimSigner({ keyring, clock, logger }).sign(input(text))).get('h')!.toLowerCase();
    assert.doesNotMatch(h, /received|return-path/);
  });

  test("Postern's own header lines are read as part of the message's header", async () => {
    const h = tags(await new DkimSigner({ keyring, clock, logger }).sign(input(BASIC, undefined, `${RECEIVED}List-Id: <news.example.com>\r\n`))).get('h')!;
    assert.match(h.toLowerCase(), /list-id/);
  });

  test('with an RSA and an Ed25519 key active, the message gets two signatures over the same body hash', async () => {
    const signature = await new DkimSigner({ keyring: dualKeyring, clock, logger }).sign(input(BASIC));
    const [rsa, ed, ...rest] = fields(signature).map(tags);
    assert.equal(rest.length, 0);
    assert.equal(rsa!.get('a'), 'rsa-sha256');
    assert.equal(ed!.get('a'), 'ed25519-sha256');
    assert.equal(ed!.get('s'), 'e1');
    assert.equal(rsa!.get('bh'), ed!.get('bh'));
  });

  test('the signatures verify: the message as delivery sends it passes a DKIM verifier', async () => {
    const records: Record<string, string> = {
      [dkimRecordName('s1', 'example.com')]: dkimRecordText('rsa', parseDkimPrivateKey(rsaPem, 'rsa').publicKeyValue),
      [dkimRecordName('e1', 'example.com')]: dkimRecordText('ed25519', parseDkimPrivateKey(edPem, 'ed').publicKeyValue),
    };
    // The keys as DNS would answer them: one TXT record of one string each.
    const resolver: DNSResolver = async (name) => {
      const record = records[name];
      if (record === undefined) throw Object.assign(new Error(`${name} not found`), { code: 'ENOTFOUND' });
      return [[record]];
    };
    const signature = await new DkimSigner({ keyring: dualKeyring, clock: systemClock, logger }).sign(input(BASIC));
    const result = await dkimVerify(Buffer.from(signature + RECEIVED + BASIC), { resolver });
    assert.deepEqual(
      result.results.map((r) => [r.selector, r.status.result]),
      [
        ['s1', 'pass'],
        ['e1', 'pass'],
      ],
    );
  });

  test('a message From a domain without a key is not signed', async () => {
    assert.equal(await new DkimSigner({ keyring, clock, logger }).sign(input(BASIC, ['bob@example.net'])), '');
  });

  test('a message with no From address, or From addresses in two domains, is not signed', async () => {
    const signer = new DkimSigner({ keyring, clock, logger });
    assert.equal(await signer.sign(input(BASIC, [])), '');
    assert.equal(await signer.sign(input(BASIC, ['undisclosed-recipients:;'])), '');
    assert.equal(await signer.sign(input(BASIC, ['alice@example.com, mallory@example.org'])), '');
    assert.equal(await signer.sign(input(BASIC, ['alice@example.com', 'mallory@example.org'])), '');
  });

  test('a message From a subdomain is signed with the parent domain as d=', async () => {
    const signer = new DkimSigner({ keyring, clock, logger });
    assert.equal(signer.signingDomainFor('news.example.com'), 'example.com');
    assert.equal(tags(await signer.sign(input(BASIC, ['news@news.example.com']))).get('d'), 'example.com');
  });

  test('a message with an empty body, or with no body at all, hashes the empty body', async () => {
    const emptyHash = createHash('sha256').update('').digest('base64');
    const signer = new DkimSigner({ keyring, clock, logger });
    assert.equal(tags(await signer.sign(input('From: alice@example.com\r\nSubject: x\r\n\r\n'))).get('bh'), emptyHash);
    assert.equal(tags(await signer.sign(input('From: alice@example.com\r\nSubject: x\r\n'))).get('bh'), emptyHash);
  });

  test('a body without a final line break hashes as the same body with one (relaxed body canonicalization)', async () => {
    const signer = new DkimSigner({ keyring, clock, logger });
    const headers = 'From: alice@example.com\r\n\r\n';
    const bare = tags(await signer.sign(input(`${headers}Hello\r\nBye.`))).get('bh');
    const ended = tags(await signer.sign(input(`${headers}Hello\r\nBye.\r\n`))).get('bh');
    const other = tags(await signer.sign(input(`${headers}Hello\r\nBye!\r\n`))).get('bh');
    assert.equal(bare, ended);
    assert.notEqual(bare, other);
  });

  test('a message file that cannot be read makes sign() reject', async () => {
    const failing: SignInput = {
      from: ['alice@example.com'],
      prepended: RECEIVED,
      open: () =>
        new Readable({
          read() {
            this.destroy(Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' }));
          },
        }),
    };
    await assert.rejects(new DkimSigner({ keyring, clock, logger }).sign(failing), /EIO/);
  });
});
