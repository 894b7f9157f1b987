import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Command } from 'commander';
import { registerUserCommands } from '../../../src/cli/userCommands.js';
import { verifyPassword } from '../../../src/auth/passwordHash.js';
import { readUsersFile } from '../../../src/auth/usersFile.js';
import { tempDir } from './support.js';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const userCommandsModule = pathToFileURL(join(repoRoot, 'src/cli/userCommands.ts')).href;
// The script lives in a temp dir, outside node_modules' reach: import commander by location.
const commanderModule = import.meta.resolve('commander');

/** A script that runs `postern user ...` against `usersFile`, as the real CLI registers it. */
function writeCliScript(dir: string, usersFile: string): string {
  const script = join(dir, 'postern-user.mts');
  writeFileSync(
    script,
    [
      `import { Command } from ${JSON.stringify(commanderModule)};`,
      `import { registerUserCommands } from ${JSON.stringify(userCommandsModule)};`,
      `const program = new Command('postern');`,
      `registerUserCommands(program, () => ${JSON.stringify(usersFile)});`,
      `await program.parseAsync(process.argv);`,
    ].join('\n'),
  );
  return script;
}

/** Run `postern user ...` as its own process, with `stdinText` piped to it. */
function runCli(dir: string, usersFile: string, args: string[], stdinText: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const script = writeCliScript(dir, usersFile);
  return new Promise((resolve) => {
    const child = execFile(process.execPath, ['--import', 'tsx', script, ...args], { cwd: repoRoot }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
    child.stdin!.end(stdinText);
  });
}

/** Run `postern user ...` in this process with the given stdin text; returns what it printed. */
async function run(usersFile: string, args: string[], stdinText = ''): Promise<string> {
  let out = '';
  const stdout = new Writable({ write: (chunk, _enc, done) => ((out += String(chunk)), done()) });
  const stderr = new Writable({ write: (_chunk, _enc, done) => done() });
  const program = new Command('postern').exitOverride();
  registerUserCommands(program, () => usersFile, { stdin: Readable.from([stdinText]), stdout, stderr });
  await program.parseAsync(['node', 'postern', ...args]);
  return out;
}

describe('postern user commands', () => {
  test('user add reads the password from piped stdin, writes a hash that verifies and keeps comments', async (t) => {
    const { dir, cleanup } = tempDir();
    t.after(cleanup);
    const path = join(dir, 'users.yaml');
    writeFileSync(path, '# Mail users for the billing team - ask ops before editing\nusers: {}  # none yet\n', { mode: 0o644 });

    const result = await runCli(dir, path, ['user', 'add', 'alice', '--sender', 'alice@example.com', '--sender', '*@alerts.example.com', '--group', 'staff'], 'piped secret pass\nsecond line ignored\n');
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /Added user alice/);
    assert.doesNotMatch(result.stdout + result.stderr, /piped secret pass|\$scrypt\$/);

    const text = readFileSync(path, 'utf8');
    assert.match(text, /# Mail users for the billing team - ask ops before editing/);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const alice = readUsersFile(path).get('alice');
    assert.ok(alice);
    assert.deepEqual(alice.senders, ['alice@example.com', '*@alerts.example.com']);
    assert.deepEqual(alice.groups, ['staff']);
    assert.equal(await verifyPassword('piped secret pass', alice.passwordHash), true);
    assert.equal(await verifyPassword('piped secret pass\n', alice.passwordHash), false);
  });

  test('user add strips a CRLF line ending and creates a missing users file', async (t) => {
    const { dir, cleanup } = tempDir();
    t.after(cleanup);
    const path = join(dir, 'new', 'users.yaml');
    await run(path, ['user', 'add', 'bob'], 'windows-password\r\n');
    const bob = readUsersFile(path).get('bob');
    assert.ok(bob);
    assert.equal(await verifyPassword('windows-password', bob.passwordHash), true);
    assert.equal(readUsersFile(path).has('postmaster'), false);
  });

  test('user add refuses an existing user, a short password and a bad sender without changing the file', async (t) => {
    const { dir, cleanup } = tempDir();
    t.after(cleanup);
    const path = join(dir, 'users.yaml');
    await run(path, ['user', 'add', 'alice'], 'first password\n');
    const before = readFileSync(path, 'utf8');

    await assert.rejects(run(path, ['user', 'add', 'alice'], 'another password\n'), /already exists/);
    await assert.rejects(run(path, ['user', 'add', 'bob'], 'short\n'), /at least 8 characters/);
    await assert.rejects(run(path, ['user', 'add', 'bob'], ''), /at least 8 characters/);
    await assert.rejects(run(path, ['user', 'add', 'bob', '--sender', 'bob@*.example.com'], 'long enough pw\n'), /Sender "bob@\*\.example\.com"/);
    await assert.rejects(run(path, ['user', 'add', 'bob:smith'], 'long enough pw\n'), /user name/);
    assert.equal(readFileSync(path, 'utf8'), before);
  });

  test('user passwd replaces only the hash and keeps senders, groups and comments', async (t) => {
    const { dir, cleanup } = tempDir();
    t.after(cleanup);
    const path = join(dir, 'users.yaml');
    await run(path, ['user', 'add', 'alice', '--sender', 'alice@example.com', '--group', 'staff'], 'old password\n');
    writeFileSync(path, readFileSync(path, 'utf8').replace('  alice:', '  # alice is the on-call account\n  alice:'));

    const out = await run(path, ['user', 'passwd', 'alice'], 'new password\n');
    assert.match(out, /Changed the password of alice/);
    const alice = readUsersFile(path).get('alice');
    assert.ok(alice);
    assert.equal(await verifyPassword('new password', alice.passwordHash), true);
    assert.equal(await verifyPassword('old password', alice.passwordHash), false);
    assert.deepEqual([alice.senders, alice.groups], [['alice@example.com'], ['staff']]);
    assert.match(readFileSync(path, 'utf8'), /# alice is the on-call account/);

    await assert.rejects(run(path, ['user', 'passwd', 'nobody'], 'new password\n'), /No user nobody/);
  });

  test('user remove deletes the user and user list shows names, senders and groups but never hashes', async (t) => {
    const { dir, cleanup } = tempDir();
    t.after(cleanup);
    const path = join(dir, 'users.yaml');
    await run(path, ['user', 'add', 'alice', '--sender', 'alice@example.com', '--group', 'staff'], 'password one\n');
    await run(path, ['user', 'add', 'bob'], 'password two\n');

    const listed = await run(path, ['user', 'list']);
    assert.match(listed, /^NAME\s+SENDERS\s+GROUPS$/m);
    assert.match(listed, /^alice\s+alice@example\.com\s+staff$/m);
    assert.match(listed, /^bob\s+-\s+-$/m);
    assert.doesNotMatch(listed, /\$scrypt\$|password/);

    assert.match(await run(path, ['user', 'remove', 'bob']), /Removed user bob/);
    assert.deepEqual([...readUsersFile(path).keys()], ['alice']);
    await assert.rejects(run(path, ['user', 'remove', 'bob']), /No user bob/);
  });

  // util-linux `script` gives the command a real pseudo-terminal, as an operator's shell would.
  const haveScript = spawnSync('script', ['--version']).status === 0;
  test('on a terminal, user add prompts twice without echo and refuses two different entries', { skip: !haveScript && 'script(1) is not installed', timeout: 120_000 }, async (t) => {
    const { dir, cleanup } = tempDir();
    t.after(cleanup);
    const path = join(dir, 'users.yaml');
    const script = writeCliScript(dir, path);
    const quote = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`;

    /** Answer each prompt in turn once it shows on the terminal; resolves with the exit code and the screen. */
    const session = (args: string[], answers: Array<[prompt: string, typed: string]>) =>
      new Promise<{ code: number | null; screen: string }>((resolve) => {
        const command = [process.execPath, '--import', 'tsx', script, ...args].map(quote).join(' ');
        const child = spawn('script', ['-q', '-e', '-c', command, '/dev/null'], { cwd: repoRoot });
        t.after(() => child.kill());
        let screen = '';
        let searchFrom = 0;
        let next = 0;
        child.stdout.on('data', (chunk: Buffer) => {
          screen += chunk.toString('utf8');
          for (let found; next < answers.length && (found = screen.indexOf(answers[next]![0], searchFrom)) >= 0; next++) {
            searchFrom = found + answers[next]![0].length;
            child.stdin.write(answers[next]![1]);
          }
        });
        child.on('close', (code) => resolve({ code, screen }));
      });

    const added = await session(['user', 'add', 'carol'], [
      ['Password for carol: ', 'terminal pass 1\r'],
      ['Again: ', 'terminal pass 1\r'],
    ]);
    assert.equal(added.code, 0, added.screen);
    assert.match(added.screen, /Added user carol/);
    assert.doesNotMatch(added.screen, /terminal pass/);
    const carol = readUsersFile(path).get('carol');
    assert.ok(carol);
    assert.equal(await verifyPassword('terminal pass 1', carol.passwordHash), true);

    const mismatch = await session(['user', 'passwd', 'carol'], [
      ['New password for carol: ', 'terminal pass 2\r'],
      ['Again: ', 'terminal pass 3\r'],
    ]);
    assert.notEqual(mismatch.code, 0);
    assert.match(mismatch.screen, /differ/);
    assert.equal(await verifyPassword('terminal pass 1', readUsersFile(path).get('carol')!.passwordHash), true);

    // Both entries pasted at once: the second line is kept for the second prompt.
    const pasted = await session(['user', 'passwd', 'carol'], [['New password for carol: ', 'pasted pass 4\rpasted pass 4\r']]);
    assert.equal(pasted.code, 0, pasted.screen);
    assert.equal(await verifyPassword('pasted pass 4', readUsersFile(path).get('carol')!.passwordHash), true);
  });

  test('--config is handed to the users file resolver of every subcommand', async (t) => {
    const { dir, cleanup } = tempDir();
    t.after(cleanup);
    const path = join(dir, 'users.yaml');
    const seen: Array<string | undefined> = [];
    const program = new Command('postern').exitOverride();
    const sink = new Writable({ write: (_chunk, _enc, done) => done() });
    registerUserCommands(
      program,
      (flag) => {
        seen.push(flag);
        return path;
      },
      { stdin: Readable.from(['a password\n']), stdout: sink, stderr: sink },
    );
    await program.parseAsync(['node', 'postern', 'user', 'add', 'dave', '--config', '/etc/postern/postern.yaml']);
    await program.parseAsync(['node', 'postern', 'user', 'list']);
    assert.deepEqual(seen, ['/etc/postern/postern.yaml', undefined]);
  });
});
