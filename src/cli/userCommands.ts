import { existsSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import type { ReadStream } from 'node:tty';
import type { Command } from 'commander';
import { hashPassword } from '../auth/passwordHash.js';
import { readUsersFile } from '../auth/usersFile.js';
import { addUser, removeUser, setPassword } from '../auth/usersFileEdit.js';

/**
 * `postern user add|passwd|remove|list`: edit the users file. Passwords are read from stdin
 * (first line) when it is not a terminal, else from a prompt that does not echo, typed twice.
 * They are never taken from the command line, where `ps` and shell history would show them.
 * A running gateway watches the users file, so these commands need no restart or signal.
 */

export interface UserCommandIo {
  stdin: Readable;
  stdout: Writable;
  stderr: Writable;
}

/** Shorter passwords are refused: an account here can send mail as its senders to anyone. */
const MIN_PASSWORD_LENGTH = 8;

export function registerUserCommands(
  program: Command,
  resolveUsersFile: (configFlag?: string) => string,
  io: UserCommandIo = { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr },
): void {
  const say = (line: string) => io.stdout.write(`${line}\n`);
  const pickedUp = 'A running gateway picks the change up by itself.';

  const user = program.command('user').description('manage the users who may log in (SMTP AUTH)');

  user
    .command('add')
    .description('add a user; the password is read from stdin, or prompted for on a terminal')
    .argument('<name>', 'user name (the SMTP AUTH login)')
    .option('--sender <address>', 'an address, *@domain or *@*.domain the user may send as (repeatable)', collect, [])
    .option('--group <group>', 'a group for policy rules (repeatable)', collect, [])
    .option('--config <file>', 'configuration file naming the users file')
    .action(async (name: string, options: { sender: string[]; group: string[]; config?: string }) => {
      const path = resolveUsersFile(options.config);
      // Fail on a taken name before asking for a password (a missing file is created by addUser).
      if (existsSync(path) && readUsersFile(path).has(name)) {
        throw new RangeError(`User ${name} already exists in ${path}; use \`postern user passwd ${name}\``);
      }
      const password = await readNewPassword(io, `Password for ${name}: `);
      await addUser(path, name, await hashPassword(password), { senders: options.sender, groups: options.group });
      say(`Added user ${name} to ${path} (senders: ${list(options.sender)}; groups: ${list(options.group)}). ${pickedUp}`);
    });

  user
    .command('passwd')
    .description("change a user's password; read from stdin, or prompted for on a terminal")
    .argument('<name>', 'user name')
    .option('--config <file>', 'configuration file naming the users file')
    .action(async (name: string, options: { config?: string }) => {
      const path = resolveUsersFile(options.config);
      // Fail on an unknown name before asking for a password.
      if (!readUsersFile(path).has(name)) throw new RangeError(`No user ${name} in ${path}`);
      const password = await readNewPassword(io, `New password for ${name}: `);
      await setPassword(path, name, await hashPassword(password));
      say(`Changed the password of ${name} in ${path}. ${pickedUp}`);
    });

  user
    .command('remove')
    .description('remove a user')
    .argument('<name>', 'user name')
    .option('--config <file>', 'configuration file naming the users file')
    .action(async (name: string, options: { config?: string }) => {
      const path = resolveUsersFile(options.config);
      await removeUser(path, name);
      say(`Removed user ${name} from ${path}. ${pickedUp}`);
    });

  user
    .command('list')
    .description('list users with their senders and groups')
    .option('--config <file>', 'configuration file naming the users file')
    .action((options: { config?: string }) => {
      const path = resolveUsersFile(options.config);
      const users = [...readUsersFile(path).values()];
      if (users.length === 0) {
        say(`No users in ${path}.`);
        return;
      }
      const rows = [['NAME', 'SENDERS', 'GROUPS'], ...users.map((u) => [u.name, list(u.senders), list(u.groups)])];
      const widths = [0, 1].map((column) => Math.max(...rows.map((row) => row[column]!.length)));
      for (const [name, senders, groups] of rows) {
        say(`${name!.padEnd(widths[0]!)}  ${senders!.padEnd(widths[1]!)}  ${groups}`.trimEnd());
      }
    });
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function list(values: readonly string[]): string {
  return values.length > 0 ? values.join(', ') : '-';
}

/** The new password: the first line of piped stdin, or typed twice at a hidden prompt. */
async function readNewPassword(io: UserCommandIo, prompt: string): Promise<string> {
  let password: string;
  const terminal = io.stdin as Partial<ReadStream>;
  if (terminal.isTTY && typeof terminal.setRawMode === 'function') {
    password = await promptHidden(io.stdin as ReadStream, io.stderr, prompt);
    const again = await promptHidden(io.stdin as ReadStream, io.stderr, 'Again: ');
    if (again !== password) throw new RangeError('The two passwords differ; nothing was changed');
  } else {
    password = await readFirstLine(io.stdin);
  }
  if ([...password].length < MIN_PASSWORD_LENGTH) {
    throw new RangeError(`The password must be at least ${MIN_PASSWORD_LENGTH} characters; nothing was changed`);
  }
  return password;
}

/** The first line of `input`, without its line ending (LF or CRLF). */
async function readFirstLine(input: Readable): Promise<string> {
  input.setEncoding('utf8');
  let text = '';
  for await (const chunk of input as AsyncIterable<string>) {
    text += chunk;
    const end = text.indexOf('\n');
    if (end >= 0) {
      text = text.slice(0, end);
      break;
    }
  }
  return text.endsWith('\r') ? text.slice(0, -1) : text;
}

/**
 * Read a line from a terminal in raw mode, echoing nothing. Backspace, Ctrl-U (erase all),
 * Ctrl-C and Ctrl-D (abort) work as in a normal prompt; escape sequences such as arrow keys
 * are ignored rather than typed into the password.
 */
function promptHidden(input: ReadStream, output: Writable, prompt: string): Promise<string> {
  // Echo goes off before the prompt shows, so nothing typed after it is ever displayed.
  input.setRawMode(true);
  input.setEncoding('utf8');
  output.write(prompt);
  return new Promise((resolve, reject) => {
    let value: string[] = [];
    let inEscape = false;
    const finish = (outcome: () => void, unread: string) => {
      input.off('data', onData);
      input.pause();
      // Text typed or pasted ahead (the second entry) belongs to the next prompt.
      if (unread) input.unshift(unread);
      input.setRawMode(false);
      output.write('\n');
      outcome();
    };
    const onData = (chunk: string) => {
      for (let i = 0; i < chunk.length; ) {
        const ch = String.fromCodePoint(chunk.codePointAt(i)!);
        i += ch.length;
        if (inEscape) {
          // CSI sequences end with a letter or '~' (ECMA-48 section 5.4).
          if (/[A-Za-z~]/.test(ch)) inEscape = false;
          continue;
        }
        if (ch === '\r' || ch === '\n') {
          const rest = chunk.slice(chunk[i] === '\n' && ch === '\r' ? i + 1 : i);
          return finish(() => resolve(value.join('')), rest);
        }
        if (ch === '\u0003' || ch === '\u0004') return finish(() => reject(new Error('Aborted; nothing was changed')), '');
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else if (ch === '\u0015') value = [];
        else if (ch === '\u001b') inEscape = true;
        else if (ch >= ' ') value.push(ch);
      }
    };
    input.on('data', onData);
    input.resume();
  });
}
