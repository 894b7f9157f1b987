import assert from 'node:assert/strict';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ALICE, gatewayWithUpstream } from '../helpers/gateway.js';
import { sampleMessage } from '../helpers/messages.js';
import { authenticatedClient } from '../helpers/smtpClient.js';

describe('a spool that cannot be written', () => {
  const fixture = gatewayWithUpstream();

  test('answers 452 4.3.1, leaves no half message behind, and accepts again once the spool is writable', async () => {
    // Tests run as root, where permissions do not stop a write: put a file where the spool's
    // temp directory should be, which fails every write the way a broken volume does.
    const tmp = join(fixture.postern.dir, 'spool', 'tmp');
    await rm(tmp, { recursive: true, force: true });
    await writeFile(tmp, 'not a directory');

    const client = await authenticatedClient(fixture.postern.submissionPort, ALICE);
    await client.command('MAIL FROM:<alice@example.com>');
    await client.command('RCPT TO:<bob@example.net>');
    const refused = await client.data(sampleMessage('refused'));
    assert.equal(refused.last, '452 4.3.1 Insufficient system storage, try again later');
    assert.deepEqual(await readdir(join(fixture.postern.dir, 'spool', 'queue')), []);

    await rm(tmp);
    await mkdir(tmp);
    await client.command('MAIL FROM:<alice@example.com>');
    await client.command('RCPT TO:<bob@example.net>');
    const accepted = await client.data(sampleMessage('accepted'));
    assert.equal(accepted.code, 250, accepted.last);
    await client.quit();
    const [message] = await fixture.upstream.waitFor(1);
    assert.match(message!.raw.toString(), /Subject: accepted/);
  });
});
