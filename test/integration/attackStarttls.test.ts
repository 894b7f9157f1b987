import assert from 'node:assert/strict';
import { connect as netConnect, type Socket } from 'node:net';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { ALICE, gatewayWithUpstream } from '../helpers/gateway.js';
import { sampleMessage, splitReceivedHeader } from '../helpers/messages.js';
import { authenticatedClient, SmtpTestClient, type Reply } from '../helpers/smtpClient.js';

/**
 * Attacks on the move to TLS. RFC 3207 §4.2: after the handshake the server discards all it
 * learned before it (EHLO, AUTH, a transaction), and commands a man in the middle appends in
 * plaintext right behind STARTTLS must never run inside the TLS session (CVE-2011-0411 and its
 * 2021 re-discoveries). RFC 4954 §4: no AUTH in plaintext, not even offered.
 */

const PLAIN_ALICE = Buffer.from(`\0${ALICE.user}\0${ALICE.password}`).toString('base64');
const VICTIM = 'starttls-victim@example.net';

/**
 * A raw client that can put anything in the same write as STARTTLS, then does the handshake on
 * the same socket and keeps talking over TLS. Replies are read line by line, as the server
 * sends them.
 */
class RawStarttlsClient {
  private buffer = '';
  private closed = false;
  private wake: (() => void) | undefined;
  private socket: Socket | TLSSocket;

  private constructor(socket: Socket) {
    this.socket = socket;
    this.listen(socket);
  }

  static async connect(port: number): Promise<RawStarttlsClient> {
    const socket = netConnect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    socket.setNoDelay(true);
    return new RawStarttlsClient(socket);
  }

  private listen(socket: Socket): void {
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      this.wake?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake?.();
    });
    socket.on('error', () => undefined);
  }

  write(data: string): void {
    this.socket.write(data);
  }

  async read(): Promise<Reply> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const lines: string[] = [];
      let offset = 0;
      for (let end = this.buffer.indexOf('\r\n'); end !== -1; end = this.buffer.indexOf('\r\n', offset)) {
        const line = this.buffer.slice(offset, end);
        offset = end + 2;
        lines.push(line);
        if (line[3] !== '-') {
          this.buffer = this.buffer.slice(offset);
          return { code: Number(line.slice(0, 3)), lines: lines.map((l) => l.slice(4)), last: line };
        }
      }
      if (this.closed) throw new Error(`closed while waiting for a reply (buffer ${JSON.stringify(this.buffer)})`);
      if (Date.now() > deadline) throw new Error(`no reply (buffer ${JSON.stringify(this.buffer)})`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 500);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  async command(line: string): Promise<Reply> {
    this.write(`${line}\r\n`);
    return this.read();
  }

  /** The handshake over the plaintext socket; whatever plaintext was still unread is dropped. */
  async handshake(): Promise<void> {
    const plain = this.socket as Socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('close');
    const secure = tlsConnect({ socket: plain, rejectUnauthorized: false, servername: 'localhost' });
    await new Promise<void>((resolve, reject) => secure.once('secureConnect', resolve).once('error', reject));
    this.socket = secure;
    this.buffer = '';
    this.listen(secure);
  }

  destroy(): void {
    this.socket.destroy();
  }
}

describe('STARTTLS attacks', () => {
  const fixture = gatewayWithUpstream();

  async function plaintextSession(): Promise<RawStarttlsClient> {
    const client = await RawStarttlsClient.connect(fixture.postern.submissionPort);
    assert.equal((await client.read()).code, 220);
    assert.equal((await client.command('EHLO client.example.test')).code, 250);
    return client;
  }

  /** The exact reply NOOP gets over TLS: any reply read before it belongs to some other command. */
  const NOOP_REPLY = /^250 /;

  test('commands in the same packet as STARTTLS are discarded, not run after the handshake', async () => {
    const client = await plaintextSession();
    // The injection a man in the middle makes: credentials of his own, a transaction to his
    // victim, all behind STARTTLS in one segment.
    client.write(
      `STARTTLS\r\nEHLO injected.example\r\nAUTH PLAIN ${PLAIN_ALICE}\r\nMAIL FROM:<alice@example.com>\r\nRCPT TO:<${VICTIM}>\r\nDATA\r\n` +
        'Subject: injected\r\n\r\ninjected\r\n.\r\n',
    );
    assert.equal((await client.read()).code, 220);
    await client.handshake();
    // The first reply over TLS must be the answer to the client's own first command.
    const first = await client.command('NOOP');
    assert.match(first.last, NOOP_REPLY, `a pipelined command was answered over TLS: ${first.last}`);
    assert.equal((await client.command('EHLO client.example.test')).code, 250);
    // Not authenticated: the injected AUTH never ran.
    assert.match((await client.command('MAIL FROM:<alice@example.com>')).last, /^530 5\.7\.0 /);
    assert.match((await client.command('NOOP')).last, NOOP_REPLY);
    client.destroy();
    await sleep(200);
    assert.deepEqual(fixture.upstream.rcptSeen.filter((r) => r.address === VICTIM), []);
  });

  test('a partial command line behind STARTTLS is not completed by the first line sent over TLS', async () => {
    const client = await plaintextSession();
    // A RCPT written in plaintext without its CRLF; if it were kept, the client's first line
    // over TLS would complete it into a command.
    client.write('STARTTLS\r\nRCPT TO:<x@example.net');
    assert.equal((await client.read()).code, 220);
    await client.handshake();
    assert.match((await client.command('NOOP')).last, NOOP_REPLY);
    assert.match((await client.command('NOOP')).last, NOOP_REPLY);
    client.destroy();
  });

  test('after TLS the EHLO from before it is forgotten: MAIL and AUTH before a new EHLO are refused', async () => {
    const client = await plaintextSession();
    assert.equal((await client.command('STARTTLS')).code, 220);
    await client.handshake();
    const auth = await client.command(`AUTH PLAIN ${PLAIN_ALICE}`);
    assert.equal(auth.code, 503, `AUTH before EHLO over TLS: ${auth.last}`);
    const mail = await client.command('MAIL FROM:<alice@example.com>');
    assert.equal(mail.code, 503, `MAIL before EHLO over TLS: ${mail.last}`);
    // With EHLO the session proceeds, and only now is AUTH offered.
    const ehlo = await client.command('EHLO client.example.test');
    assert.ok(ehlo.lines.some((line) => /^AUTH\b.*PLAIN/.test(line)), ehlo.lines.join(' | '));
    assert.equal((await client.command(`AUTH PLAIN ${PLAIN_ALICE}`)).code, 235);
    client.destroy();
  });

  test('the name given in EHLO before TLS never reaches the Received header; the one after TLS does', async () => {
    const before = fixture.upstream.messages.length;
    const client = await RawStarttlsClient.connect(fixture.postern.submissionPort);
    await client.read();
    assert.equal((await client.command('EHLO before-tls.attacker.example')).code, 250);
    assert.equal((await client.command('STARTTLS')).code, 220);
    await client.handshake();
    assert.equal((await client.command('EHLO after-tls.client.example')).code, 250);
    assert.equal((await client.command(`AUTH PLAIN ${PLAIN_ALICE}`)).code, 235);
    assert.equal((await client.command('MAIL FROM:<alice@example.com>')).code, 250);
    assert.equal((await client.command('RCPT TO:<bob@example.net>')).code, 250);
    assert.equal((await client.command('DATA')).code, 354);
    client.write(`${sampleMessage('ehlo after tls')}.\r\n`);
    assert.equal((await client.read()).code, 250);
    client.destroy();
    const [message] = (await fixture.upstream.waitFor(before + 1)).slice(before);
    const { received } = splitReceivedHeader(message!.raw);
    assert.match(received, /^Received: from after-tls\.client\.example /);
    assert.ok(!message!.raw.toString('latin1').includes('before-tls'), received);
  });

  test('AUTH in plaintext is neither offered nor accepted, with or without an initial response, and leaves nothing behind for after TLS', async () => {
    const client = await RawStarttlsClient.connect(fixture.postern.submissionPort);
    await client.read();
    const ehlo = await client.command('EHLO client.example.test');
    assert.ok(!ehlo.lines.some((line) => /^AUTH\b/i.test(line)), `AUTH offered before TLS: ${ehlo.lines.join(' | ')}`);
    for (const attempt of [`AUTH PLAIN ${PLAIN_ALICE}`, 'AUTH PLAIN', 'AUTH LOGIN', `AUTH LOGIN ${Buffer.from(ALICE.user).toString('base64')}`]) {
      const reply = await client.command(attempt);
      assert.ok(reply.code >= 500, `${attempt.slice(0, 10)}: ${reply.last}`);
    }
    // The base64 password a client would send next is no command either, and no credential.
    assert.ok((await client.command(Buffer.from(ALICE.password).toString('base64'))).code >= 500);
    assert.equal((await client.command('STARTTLS')).code, 220);
    await client.handshake();
    assert.equal((await client.command('EHLO client.example.test')).code, 250);
    assert.match((await client.command('MAIL FROM:<alice@example.com>')).last, /^530 5\.7\.0 /, 'no AUTH state survives from plaintext');
    client.destroy();
  });

  test('STARTTLS twice is refused with 503 and the TLS session goes on', async () => {
    const client = await authenticatedClient(fixture.postern.submissionPort, ALICE);
    const again = await client.command('STARTTLS');
    assert.equal(again.code, 503, again.last);
    assert.equal((await client.command('MAIL FROM:<alice@example.com>')).code, 250);
    await client.quit();
  });

  test('STARTTLS with an argument is refused (RFC 3207 §4) and TLS is not started', async () => {
    const client = await plaintextSession();
    assert.equal((await client.command('STARTTLS now')).code, 501);
    // Still plaintext: MAIL is refused for lack of TLS.
    assert.match((await client.command('MAIL FROM:<alice@example.com>')).last, /^530 5\.7\.0 Must issue a STARTTLS/);
    client.destroy();
  });

  test('on the implicit TLS listener STARTTLS is neither offered nor accepted', async () => {
    const client = await SmtpTestClient.connect(fixture.postern.submissionsPort, { implicitTls: true });
    await client.greeting();
    const ehlo = await client.ehlo();
    assert.ok(!ehlo.lines.includes('STARTTLS'), ehlo.lines.join(' | '));
    assert.ok((await client.command('STARTTLS')).code >= 500);
    assert.equal((await client.command('NOOP')).code, 250);
    await client.quit();
  });
});
