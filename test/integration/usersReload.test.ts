import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { gatewayWithUpstream } from '../helpers/gateway.js';
import { SmtpTestClient } from '../helpers/smtpClient.js';

const REPO = resolve(import.meta.dirname, '../..');

async function tryLogin(port: number, user: string, password: string): Promise<number> {
  const client = await SmtpTestClient.connect(port, { implicitTls: true });
  await client.greeting();
  await client.ehlo();
  const reply = await client.authPlain(user, password);
  await client.quit();
  return reply.code;
}

describe('users are managed without a restart', () => {
  const fixture = gatewayWithUpstream();

  test('a user added with `postern user add` (password on stdin) can log in to the running gateway', async () => {
    assert.equal(await tryLogin(fixture.postern.submissionsPort, 'bob', 'bobs new password'), 535);
    const added = spawnSync(
      process.execPath,
      ['--import', 'tsx', join(REPO, 'src/cli/index.ts'), 'user', 'add', 'bob', '--sender', 'bob@example.com', '--config', fixture.postern.configFile],
      { input: 'bobs new password\n', encoding: 'utf8', cwd: REPO },
    );
    assert.equal(added.status, 0, added.stderr);
    assert.doesNotMatch(added.stdout + added.stderr, /bobs new password/, 'the password is never echoed');

    const deadline = Date.now() + 10_000;
    let code = 0;
    while (Date.now() < deadline && (code = await tryLogin(fixture.postern.submissionsPort, 'bob', 'bobs new password')) !== 235) {
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    assert.equal(code, 235);
  });
});
