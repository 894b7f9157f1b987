import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { DkimKeyring } from '../../src/dkim/dkimKeys.js';
import { DkimSigner } from '../../src/dkim/dkimSigner.js';
import { systemClock } from '../../src/util/clock.js';
import { silentLogger } from '../../src/util/logger.js';
import { keyConfig, keyDirectory, newKeyPem, publishedRecord, replaceKeyFile, writeKeyFile } from '../helpers/dkimFixtures.js';
import { verifyWithDkimpy, verifyWithMailauth, type DkimVerdict } from '../helpers/dkimVerifier.js';
import { startDnsServer, type DnsServer } from '../helpers/dnsServer.js';
import { ALICE, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { authenticatedClient } from '../helpers/smtpClient.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';

/**
 * Every signature Postern makes must verify with implementations that are not Postern's:
 * Debian's python3-dkim (dkimpy) above all, mailauth's verifier as a second opinion, both
 * fetching the keys from a real DNS server on loopback (dnsmasq) that publishes them as TXT
 * records split into strings of at most 255 octets, as a zone would.
 */

const logger = silentLogger();
const RECEIVED = 'Received: from client.example.test ([192.0.2.1])\r\n\tby postern.test with ESMTPSA id 01TEST;\r\n\tMon, 30 Nov 2026 09:00:00 +0000\r\n';

function message(options: { from?: string; subject?: string; body?: string; extraHeaders?: string[] } = {}): string {
  return [
    `From: Alice <${options.from ?? 'alice@example.com'}>`,
    'To: Bob <bob@example.net>',
    `Subject: ${options.subject ?? 'Quarterly report'}`,
    'Date: Mon, 30 Nov 2026 09:00:00 +0000',
    `Message-ID: <${Math.random().toString(36).slice(2)}@example.com>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
    ...(options.extraHeaders ?? []),
    '',
    options.body ?? 'Hello Bob,\r\n\r\nthe figures are attached.\r\n',
  ].join('\r\n');
}

/** Signs `text` as the gateway does and returns what delivery sends: signature, Postern's lines, the message. */
async function signed(keyring: DkimKeyring, text: string, from = 'alice@example.com'): Promise<Buffer> {
  const signer = new DkimSigner({ keyring, clock: systemClock, logger });
  const signature = await signer.sign({ from: [`Alice <${from}>`], prepended: RECEIVED, open: () => Readable.from([Buffer.from(text)]) });
  return Buffer.concat([Buffer.from(signature), Buffer.from(RECEIVED), Buffer.from(text)]);
}

function summary(verdicts: DkimVerdict[]): Array<[string, string, boolean]> {
  return verdicts.map((v) => [v.selector, v.algorithm, v.valid]);
}

function assertAllValid(verdicts: DkimVerdict[], expected: Array<[selector: string, algorithm: string]>, who: string): void {
  assert.deepEqual(
    summary(verdicts),
    expected.map(([selector, algorithm]) => [selector, algorithm, true]),
    `${who}: ${JSON.stringify(verdicts)}`,
  );
}

describe('DKIM signatures verify with independent verifiers', () => {
  let keys: { dir: string; remove(): Promise<void> };
  let dns: DnsServer;
  /** Publishes only the replacement key of the "swap" selector. */
  let dnsAfterSwap: DnsServer;
  let rsa: DkimKeyring;
  let ed: DkimKeyring;
  let dual: DkimKeyring;
  const pems = {
    r1: newKeyPem('rsa'),
    e1: newKeyPem('ed25519'),
    jan: newKeyPem('rsa'),
    feb: newKeyPem('rsa'),
    swapOld: newKeyPem('rsa'),
    swapNew: newKeyPem('rsa'),
    gw: newKeyPem('rsa'),
    gwEd: newKeyPem('ed25519'),
  };
  const files: Record<string, string> = {};

  before(async () => {
    keys = await keyDirectory();
    for (const [name, pem] of Object.entries(pems)) files[name] = await writeKeyFile(keys.dir, `${name}.key`, pem);
    dns = await startDnsServer({
      zone: 'example.com',
      txt: {
        ...publishedRecord('r1', 'example.com', pems.r1),
        ...publishedRecord('e1', 'example.com', pems.e1),
        ...publishedRecord('jan', 'example.com', pems.jan),
        ...publishedRecord('feb', 'example.com', pems.feb),
        ...publishedRecord('swap', 'example.com', pems.swapOld),
        ...publishedRecord('gw', 'example.com', pems.gw),
        ...publishedRecord('gwed', 'example.com', pems.gwEd),
      },
    });
    dnsAfterSwap = await startDnsServer({ zone: 'example.com', txt: publishedRecord('swap', 'example.com', pems.swapNew) });
    rsa = new DkimKeyring({ keys: [keyConfig('example.com', 'r1', files.r1!)], logger, watch: false });
    ed = new DkimKeyring({ keys: [keyConfig('example.com', 'e1', files.e1!)], logger, watch: false });
    dual = new DkimKeyring({ keys: [keyConfig('example.com', 'r1', files.r1!), keyConfig('example.com', 'e1', files.e1!)], logger, watch: false });
  });
  after(async () => {
    await dns?.stop();
    await dnsAfterSwap?.stop();
    await keys?.remove();
  });

  test('an RSA-2048 signature verifies with python3-dkim and with mailauth', async () => {
    const mail = await signed(rsa, message());
    assertAllValid(await verifyWithDkimpy(mail, dns), [['r1', 'rsa-sha256']], 'python3-dkim');
    assertAllValid(await verifyWithMailauth(mail, dns), [['r1', 'rsa-sha256']], 'mailauth');
  });

  test('an Ed25519 signature (RFC 8463) verifies with python3-dkim and with mailauth', async () => {
    const mail = await signed(ed, message());
    assertAllValid(await verifyWithDkimpy(mail, dns), [['e1', 'ed25519-sha256']], 'python3-dkim');
    assertAllValid(await verifyWithMailauth(mail, dns), [['e1', 'ed25519-sha256']], 'mailauth');
  });

  test('dual signing: both the RSA and the Ed25519 signature verify', async () => {
    const mail = await signed(dual, message());
    const both: Array<[string, string]> = [
      ['r1', 'rsa-sha256'],
      ['e1', 'ed25519-sha256'],
    ];
    assertAllValid(await verifyWithDkimpy(mail, dns), both, 'python3-dkim');
    assertAllValid(await verifyWithMailauth(mail, dns), both, 'mailauth');
  });

  // mailauth's verifier (like its signer) finds no header at all in a message that has no empty
  // line after it, and so reports such a message unsigned; python3-dkim alone judges that shape.
  const shapes: Array<[name: string, text: string, alsoMailauth?: false]> = [
    ['lines of 990 characters (SMTP allows 998)', message({ body: `${'x'.repeat(990)}\r\n${'word '.repeat(197)}\r\n${'y'.repeat(990)}\r\n` })],
    ['an 8-bit UTF-8 body and an unencoded UTF-8 subject', message({ subject: 'Grüße aus Zürich ✓', body: 'Prix: 20 €\r\nНовости недели\r\n日本語のテキスト\r\n' })],
    ['a body with no line break at its end', message({ body: 'Hello Bob,\r\nno final line break' })],
    ['lines starting with a dot, as SMTP unstuffs them', message({ body: '.\r\n..two dots\r\n.leading dot\r\n. \r\nend\r\n' })],
    ['white space at line ends, runs of blanks and tabs, and trailing empty lines', message({ body: 'a  b\t\tc   \r\n\t indented\r\n\r\n\r\n\r\n' })],
    ['an empty body', message({ body: '' })],
    ['no body at all (no empty line after the header)', message().replace(/\r\n\r\n[\s\S]*$/, '\r\n'), false],
    ['folded header fields', message({ extraHeaders: ['References: <a@example.com>\r\n <b@example.com>\r\n\t<c@example.com>', 'Subject-Extra: x'] })],
  ];
  for (const [name, text, alsoMailauth] of shapes) {
    test(`a message with ${name} verifies with python3-dkim${alsoMailauth === false ? '' : ' and with mailauth'}`, async () => {
      const mail = await signed(dual, text);
      const both: Array<[string, string]> = [
        ['r1', 'rsa-sha256'],
        ['e1', 'ed25519-sha256'],
      ];
      assertAllValid(await verifyWithDkimpy(mail, dns), both, 'python3-dkim');
      if (alsoMailauth !== false) assertAllValid(await verifyWithMailauth(mail, dns), both, 'mailauth');
    });
  }

  test("mail From a subdomain is signed with the parent domain's key, and verifies", async () => {
    const mail = await signed(rsa, message({ from: 'news@news.example.com' }), 'news@news.example.com');
    const verdicts = await verifyWithDkimpy(mail, dns);
    assertAllValid(verdicts, [['r1', 'rsa-sha256']], 'python3-dkim');
    assert.equal(verdicts[0]!.domain, 'example.com');
  });

  test('mail From a domain without a key carries no signature', async () => {
    const mail = await signed(dual, message({ from: 'bob@example.org' }), 'bob@example.org');
    assert.doesNotMatch(mail.toString('latin1'), /^DKIM-Signature:/im);
    assert.deepEqual(await verifyWithDkimpy(mail, dns), []);
  });

  test('key rotation: after update() marks a new selector active, the next signature uses it and verifies', async () => {
    const keyring = new DkimKeyring({ keys: [keyConfig('example.com', 'jan', files.jan!), keyConfig('example.com', 'feb', files.feb!, false)], logger, watch: false });
    assertAllValid(await verifyWithDkimpy(await signed(keyring, message()), dns), [['jan', 'rsa-sha256']], 'before rotation');
    keyring.update([keyConfig('example.com', 'jan', files.jan!, false), keyConfig('example.com', 'feb', files.feb!)]);
    assertAllValid(await verifyWithDkimpy(await signed(keyring, message()), dns), [['feb', 'rsa-sha256']], 'after rotation');
  });

  test('a replaced key file is used for the next message without a restart', async () => {
    let reloaded!: () => void;
    const changed = new Promise<void>((resolve) => (reloaded = resolve));
    const keyring = new DkimKeyring({
      keys: [keyConfig('example.com', 'swap', files.swapOld!)],
      logger,
      watchOptions: { debounceMs: 20, pollMs: 100 },
      onReload: (outcome) => {
        if (outcome.changed) reloaded();
      },
    });
    // The watcher's timers do not hold the process open; this one does, while the test waits.
    const keepAlive = setInterval(() => undefined, 1000);
    try {
      assertAllValid(await verifyWithDkimpy(await signed(keyring, message()), dns), [['swap', 'rsa-sha256']], 'old key');
      await replaceKeyFile(files.swapOld!, pems.swapNew);
      await changed;
      const mail = await signed(keyring, message());
      assertAllValid(await verifyWithDkimpy(mail, dnsAfterSwap), [['swap', 'rsa-sha256']], 'new key against the new record');
      assert.deepEqual(summary(await verifyWithDkimpy(mail, dns)), [['swap', 'rsa-sha256', false]], 'the old record no longer verifies it');
    } finally {
      clearInterval(keepAlive);
      keyring.close();
    }
  });

  test('over-signing: a From or Subject added to a signed message makes python3-dkim fail it, an unsigned field does not', async () => {
    const mail = (await signed(rsa, message())).toString('latin1');
    const withField = (field: string) => Buffer.from(mail.replace(/\r\nTo: /, `\r\n${field}\r\nTo: `), 'latin1');
    const secondFrom = withField('From: Mallory <mallory@example.com>');
    const secondSubject = withField('Subject: Please wire the money');
    const unsigned = withField('X-Spam-Score: 0.1');

    assert.deepEqual(summary(await verifyWithDkimpy(secondFrom, dns)), [['r1', 'rsa-sha256', false]]);
    assert.deepEqual(summary(await verifyWithMailauth(secondFrom, dns)), [['r1', 'rsa-sha256', false]]);
    assert.deepEqual(summary(await verifyWithDkimpy(secondSubject, dns)), [['r1', 'rsa-sha256', false]]);
    assertAllValid(await verifyWithDkimpy(unsigned, dns), [['r1', 'rsa-sha256']], 'an added unsigned field');
  });

  describe('through the gateway', () => {
    let upstream: Upstream;
    let postern: TestGateway;
    before(async () => {
      upstream = await startUpstream();
      const keysYaml = `[ { domain: example.com, selector: gw, keyFile: ${JSON.stringify(files.gw)} }, { domain: example.com, selector: gwed, keyFile: ${JSON.stringify(files.gwEd)} } ]`;
      postern = await startTestGateway({ upstreamPort: upstream.port, extraYaml: `dkim: { keys: ${keysYaml} }` });
    });
    after(async () => {
      await postern?.dispose();
      await upstream?.close();
    });

    test('a submitted message arrives upstream with signatures python3-dkim verifies on the bytes as received', async () => {
      const body = message({
        subject: 'Grüße ✓',
        body: `.leading dot\r\n..two dots\r\n${'z'.repeat(990)}\r\nPrix: 20 €\r\nno final line break`,
      });
      const client = await authenticatedClient(postern.submissionPort, ALICE);
      assert.equal((await client.command('MAIL FROM:<alice@example.com> BODY=8BITMIME')).code, 250);
      assert.equal((await client.command('RCPT TO:<bob@example.net>')).code, 250);
      const reply = await client.data(Buffer.from(body));
      await client.quit();
      assert.equal(reply.code, 250, reply.last);

      const [received] = await upstream.waitFor(1);
      const raw = received!.raw;
      assert.match(raw.toString('latin1'), /^DKIM-Signature: /, 'the signatures are on top');
      const both: Array<[string, string]> = [
        ['gw', 'rsa-sha256'],
        ['gwed', 'ed25519-sha256'],
      ];
      assertAllValid(await verifyWithDkimpy(raw, dns), both, 'python3-dkim');
      assertAllValid(await verifyWithMailauth(raw, dns), both, 'mailauth');
    });

    test('switching the active selector in the configuration file signs the next message with the new key, without a restart', async () => {
      const config = await readFile(postern.configFile, 'utf8');
      // gw retires (listed, inactive), jan becomes the active RSA key; gwed stays.
      const rotated = config.replace(
        /^dkim: .*$/m,
        `dkim: { keys: [ { domain: example.com, selector: gw, keyFile: ${JSON.stringify(files.gw)}, active: false }, ` +
          `{ domain: example.com, selector: jan, keyFile: ${JSON.stringify(files.jan)} }, ` +
          `{ domain: example.com, selector: gwed, keyFile: ${JSON.stringify(files.gwEd)} } ] }`,
      );
      assert.notEqual(rotated, config);
      await writeFile(postern.configFile, rotated);

      const expected: Array<[string, string]> = [
        ['jan', 'rsa-sha256'],
        ['gwed', 'ed25519-sha256'],
      ];
      // The file watcher applies the change within moments; each message shows which keys signed it.
      for (let sent = 1; ; sent++) {
        const client = await authenticatedClient(postern.submissionPort, ALICE);
        assert.equal((await client.command('MAIL FROM:<alice@example.com>')).code, 250);
        assert.equal((await client.command('RCPT TO:<bob@example.net>')).code, 250);
        assert.equal((await client.data(Buffer.from(message()))).code, 250);
        await client.quit();
        const raw = (await upstream.waitFor(1 + sent)).at(-1)!.raw;
        const verdicts = await verifyWithDkimpy(raw, dns);
        if (verdicts.some((v) => v.selector === 'gw')) {
          assert.ok(sent < 40, 'the configuration change was never applied');
          await new Promise((resolve) => setTimeout(resolve, 100));
          continue;
        }
        assertAllValid(verdicts, expected, 'python3-dkim after the rotation');
        break;
      }
    });
  });
});
