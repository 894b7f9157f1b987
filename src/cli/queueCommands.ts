import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { Option, type Command } from 'commander';
import { pino } from 'pino';
import { ControlError, connectControl, isNoGateway, type ControlConnection } from '../control/controlClient.js';
import { controlSocketPath } from '../control/controlSocketPath.js';
import { liveGatewayPid } from '../control/gatewayPidFile.js';
import { OfflineQueueControl, readQueuedEnvelope, readQueueSnapshot } from '../control/offlineQueueControl.js';
import type { Envelope, RecipientState } from '../spool/envelope.js';
import { isQueueId } from '../spool/queueId.js';
import { spoolLayout } from '../spool/recovery.js';
import { Spool } from '../spool/spool.js';
import { systemClock } from '../util/clock.js';
import { errorMessage } from '../util/errors.js';
import { createLogger } from '../util/logger.js';

/**
 * `postern queue list|show|retry|delete|bounce`: look at and act on the delivery queue.
 *
 * As with Postfix's postqueue and postsuper, a running gateway is asked to do the work (over
 * its control socket), because its delivery workers hold messages in flight and a change made
 * behind their back would race them. When no gateway answers, nothing can race: the command
 * says so and works on the spool files itself, and the gateway acts on what it finds when it
 * next starts.
 */

export interface QueueCommandIo {
  stdout: Writable;
  stderr: Writable;
}

/** Connecting to a local socket is immediate unless the gateway is stuck. */
const CONNECT_TIMEOUT_MS = 5_000;
const LOOK_TIMEOUT_MS = 30_000;
/** A change waits for a delivery attempt of that message to be recorded, which can take minutes. */
const CHANGE_TIMEOUT_MS = 5 * 60_000;
/** `queue show` prints the header block; more than this is not a header block a human reads. */
const MAX_HEADER_BLOCK_BYTES = 64 * 1024;

export function registerQueueCommands(
  program: Command,
  resolveSpoolDir: (configFlag?: string) => string,
  io: QueueCommandIo = { stdout: process.stdout, stderr: process.stderr },
): void {
  const say = (text: string) => io.stdout.write(`${text}\n`);
  const configOption = () => new Option('-c, --config <file>', 'configuration file (default: $POSTERN_CONFIG or ./postern.yaml)');
  const queue = program.command('queue').description('look at and act on the delivery queue (through the running gateway when there is one)');

  queue
    .command('list')
    .description('list queued messages with each recipient and its last reply, like mailq')
    .addOption(configOption())
    .option('--json', 'print the envelopes as a JSON array', false)
    .action(
      withQueue(resolveSpoolDir, io, async (access, options: { json: boolean }) => {
        const envelopes = await access.list();
        if (options.json) {
          say(JSON.stringify(envelopes, null, 2));
          return;
        }
        say(formatQueueList(envelopes));
      }),
    );

  queue
    .command('show')
    .description("print a message's envelope, delivery state and header block")
    .argument('<id>', 'queue ID')
    .addOption(configOption())
    .action(
      withQueue(resolveSpoolDir, io, async (access, _options, rawId: string) => {
        const id = queueIdArgument(rawId);
        const envelope = await access.get(id);
        if (!envelope) throw notQueued(id);
        const headers = await readHeaderBlock(join(spoolLayout(access.spoolDir).queue, `${id}.eml`));
        say(formatEnvelope(envelope));
        say('');
        if (headers === undefined) {
          say('(the message file is gone: the message was delivered or deleted meanwhile)');
          return;
        }
        io.stdout.write(printableBlock(`${envelope.headers ?? ''}${headers.text}`));
        if (headers.truncated) say(`(header block cut at ${MAX_HEADER_BLOCK_BYTES} bytes)`);
      }),
    );

  queue
    .command('retry')
    .description('attempt a message (or, with --all, every message) now, whatever the retry schedule says')
    .argument('[id]', 'queue ID')
    .option('--all', 'every queued message', false)
    .addOption(configOption())
    .action(
      withQueue(resolveSpoolDir, io, async (access, options: { all: boolean }, rawId?: string) => {
        if ((rawId === undefined) === !options.all) throw new RangeError('Give either a queue ID or --all');
        const when = access.via === 'gateway' ? 'now' : 'when the gateway starts';
        if (options.all) {
          const count = await access.retry();
          say(`Scheduled ${plural(count, 'message')} for delivery ${when}`);
          return;
        }
        const id = queueIdArgument(rawId!);
        if ((await access.retry(id)) === 0) throw notQueued(id);
        say(`Scheduled message ${id} for delivery ${when}`);
      }),
    );

  queue
    .command('delete')
    .description('take a message out of the queue without telling the sender')
    .argument('<id>', 'queue ID')
    .addOption(configOption())
    .action(
      withQueue(resolveSpoolDir, io, async (access, _options, rawId: string) => {
        const id = queueIdArgument(rawId);
        const envelope = await access.get(id);
        if (!envelope || !(await access.delete(id))) throw notQueued(id);
        say(`Deleted message ${id} from ${senderText(envelope.sender)} to ${plural(envelope.recipients.length, 'recipient')}; the sender is not told`);
      }),
    );

  queue
    .command('bounce')
    .description('give up on every pending recipient of a message and notify the sender')
    .argument('<id>', 'queue ID')
    .addOption(configOption())
    .action(
      withQueue(resolveSpoolDir, io, async (access, _options, rawId: string) => {
        const id = queueIdArgument(rawId);
        const envelope = await access.get(id);
        if (!envelope) throw notQueued(id);
        const pending = envelope.recipients.filter((r) => r.status === 'pending').length;
        if (pending === 0) {
          say(`Message ${id} has no pending recipient; nothing was changed`);
          return;
        }
        if (!(await access.bounce(id))) throw notQueued(id);
        // RFC 5321 section 4.5.5: a message from the null sender is never answered with a DSN.
        const notice =
          envelope.sender === ''
            ? 'no notification: the message has the null sender <>'
            : access.via === 'gateway'
              ? `${senderText(envelope.sender)} is sent a delivery status notification`
              : `${senderText(envelope.sender)} is sent a delivery status notification when the gateway starts`;
        say(`Returned message ${id}: ${plural(pending, 'pending recipient')} marked failed; ${notice}`);
      }),
    );
}

/** The queue as a command sees it, whether through the gateway or on the spool. */
interface QueueAccess {
  via: 'gateway' | 'spool';
  spoolDir: string;
  list(): Promise<Envelope[]>;
  get(id: string): Promise<Envelope | undefined>;
  retry(id?: string): Promise<number>;
  delete(id: string): Promise<boolean>;
  bounce(id: string): Promise<boolean>;
  close(): void;
}

/**
 * Wrap a command action: load the spool directory from --config, reach the queue, run, and
 * report a failed control call in one line instead of a stack trace.
 */
function withQueue<O extends object, A extends unknown[]>(
  resolveSpoolDir: (configFlag?: string) => string,
  io: QueueCommandIo,
  run: (access: QueueAccess, options: O, ...args: A) => Promise<void>,
): (...args: unknown[]) => Promise<void> {
  return async (...args: unknown[]) => {
    // Commander passes the arguments, then the options, then the command.
    const options = args[args.length - 2] as O & { config?: string };
    const positional = args.slice(0, -2) as A;
    const spoolDir = resolveSpoolDir(options.config);
    let access: QueueAccess | undefined;
    try {
      access = await openQueueAccess(spoolDir, io);
      await run(access, options, ...positional);
    } catch (err) {
      if (!(err instanceof ControlError)) throw err;
      io.stderr.write(`postern: ${err.message}\n`);
      process.exitCode = 1;
    } finally {
      access?.close();
    }
  };
}

async function openQueueAccess(spoolDir: string, io: QueueCommandIo): Promise<QueueAccess> {
  const path = controlSocketPath(spoolDir);
  try {
    return gatewayAccess(spoolDir, await connectControl(path, CONNECT_TIMEOUT_MS));
  } catch (err) {
    if (!isNoGateway(err)) throw err;
  }
  return spoolAccess(spoolDir, io, `no running gateway answers on ${path}; acting on the spool directly\n`);
}

function gatewayAccess(spoolDir: string, connection: ControlConnection): QueueAccess {
  return {
    via: 'gateway',
    spoolDir,
    list: () => connection.call({ op: 'list' }, LOOK_TIMEOUT_MS),
    get: async (id) => (await connection.call({ op: 'get', id }, LOOK_TIMEOUT_MS)) ?? undefined,
    retry: (id) => connection.call(id === undefined ? { op: 'retry' } : { op: 'retry', id }, CHANGE_TIMEOUT_MS),
    delete: (id) => connection.call({ op: 'delete', id }, CHANGE_TIMEOUT_MS),
    bounce: (id) => connection.call({ op: 'bounce', id }, CHANGE_TIMEOUT_MS),
    close: () => connection.close(),
  };
}

/**
 * Looking reads the files and changes nothing; changing opens the spool (which recovers it,
 * as a starting gateway would) only when a change is asked for.
 */
function spoolAccess(spoolDir: string, io: QueueCommandIo, notice: string): QueueAccess {
  let control: Promise<OfflineQueueControl> | undefined;
  let noticed = false;
  // Said once, when the spool is first touched: a command refused for its arguments touches nothing.
  const touch = () => {
    if (!noticed) io.stderr.write(notice);
    noticed = true;
  };
  const changer = () => {
    const live = liveGatewayPid(spoolDir);
    if (live !== undefined) {
      // Changing the spool under a live gateway's workers could lose or double a message.
      throw new ControlError(
        `a gateway (pid ${live}) is running on ${spoolDir} but does not answer on its control socket; the queue cannot be changed safely from here`,
      );
    }
    touch();
    control ??= Spool.open({
      dir: spoolDir,
      // Recovery's warnings (a record moved aside) matter to the operator; stdout is the command's.
      logger: createLogger('warn', pino.destination({ dest: 2, sync: true })),
      clock: systemClock,
    }).then((spool) => new OfflineQueueControl({ spool, clock: systemClock }));
    return control;
  };
  const snapshot = async () => {
    touch();
    const { envelopes, unreadable } = await readQueueSnapshot(spoolDir);
    for (const { file, reason } of unreadable) io.stderr.write(`postern: skipped unreadable ${file}: ${reason}\n`);
    return envelopes;
  };
  return {
    via: 'spool',
    spoolDir,
    list: snapshot,
    get: async (id) => {
      touch();
      try {
        return await readQueuedEnvelope(spoolDir, id);
      } catch (err) {
        throw new RangeError(`Message ${id} cannot be read: ${errorMessage(err)}`);
      }
    },
    retry: async (id) => (await changer()).retry(id),
    delete: async (id) => (await changer()).delete(id),
    bounce: async (id) => (await changer()).bounce(id),
    close: () => undefined,
  };
}

/** IDs are upper case; one copied from a lower-cased log line still names the message. */
function queueIdArgument(text: string): string {
  const id = text.trim().toUpperCase();
  if (!isQueueId(id)) throw new RangeError(`No message ${text} in the queue: a queue ID is 16 characters of 0-9 and A-Z`);
  return id;
}

function notQueued(id: string): RangeError {
  return new RangeError(`No message ${id} in the queue`);
}

/** One entry per message, as mailq prints it: the message line, then one line per recipient. */
export function formatQueueList(envelopes: readonly Envelope[]): string {
  if (envelopes.length === 0) return 'Queue is empty';
  const sizeWidth = Math.max(...envelopes.map((e) => String(e.size).length));
  const entries = envelopes.map((envelope) => {
    const pending = envelope.recipients.some((r) => r.status === 'pending');
    const next = pending ? `  (next attempt ${formatTime(envelope.nextAttemptAt)})` : '';
    const lines = [`${envelope.id}  ${String(envelope.size).padStart(sizeWidth)}  ${formatTime(envelope.receivedAt)}  ${senderText(envelope.sender)}${next}`];
    for (const recipient of envelope.recipients) lines.push(`    ${recipientLine(recipient)}`);
    return lines.join('\n');
  });
  const bytes = envelopes.reduce((sum, envelope) => sum + envelope.size, 0);
  return `${entries.join('\n\n')}\n\n${plural(envelopes.length, 'message')}, ${plural(bytes, 'byte')}`;
}

export function formatEnvelope(envelope: Envelope): string {
  const received = [formatTime(envelope.receivedAt)];
  if (envelope.clientIp) received.push(`from ${printable(envelope.clientIp)}`);
  if (envelope.user) received.push(`as ${printable(envelope.user)}`);
  const options = [envelope.smtpUtf8 && 'SMTPUTF8', envelope.bodyType && `BODY=${envelope.bodyType.toUpperCase()}`].filter(Boolean);
  const pending = envelope.recipients.some((r) => r.status === 'pending');
  const lines = [
    `Message ${envelope.id}`,
    `  received:   ${received.join(' ')}`,
    `  sender:     ${senderText(envelope.sender)}`,
    `  size:       ${plural(envelope.size, 'byte')}`,
    `  attempts:   ${envelope.attempts}${pending ? `, next ${formatTime(envelope.nextAttemptAt)}` : ''}`,
  ];
  if (options.length > 0) lines.push(`  options:    ${options.join(', ')}`);
  if (envelope.delayWarningId) lines.push(`  delay warning: ${envelope.delayWarningId}${envelope.delayWarningSent ? ' (queued)' : ''}`);
  lines.push('  recipients:');
  for (const recipient of envelope.recipients) {
    lines.push(`    ${recipientLine(recipient)}`);
    const detail = [plural(recipient.attempts, 'attempt')];
    if (recipient.lastAttemptAt !== undefined) detail.push(`last ${formatTime(recipient.lastAttemptAt)}`);
    if (recipient.remoteMta) detail.push(`by ${printable(recipient.remoteMta)}`);
    if (recipient.dsnId) detail.push(`notification ${recipient.dsnId}${recipient.dsnSent ? ' queued' : ' not yet queued'}`);
    lines.push(`      ${detail.join(', ')}`);
  }
  return lines.join('\n');
}

function recipientLine(recipient: RecipientState): string {
  const reply = recipient.lastReply ? `  (${printable(recipient.lastReply)})` : '';
  return `${printable(recipient.address)}  ${recipient.status}${reply}`;
}

function senderText(sender: string): string {
  return sender === '' ? '<>' : printable(sender);
}

function formatTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

/**
 * Replies come from remote servers and headers from clients: control characters in them
 * (escape sequences above all) must not reach the operator's terminal as such.
 */
function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ');
}

/** A header block for the terminal: CRLF as newlines, folding tabs kept, other controls replaced. */
function printableBlock(text: string): string {
  return text.replace(/\r\n/g, '\n').replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, '?');
}

/**
 * The message's header block: everything before the first empty line (RFC 5322 section 2.1),
 * read from the start of the file and no further than MAX_HEADER_BLOCK_BYTES. Undefined when
 * the file is gone.
 */
async function readHeaderBlock(path: string): Promise<{ text: string; truncated: boolean } | undefined> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const buffer = Buffer.alloc(MAX_HEADER_BLOCK_BYTES + 1);
    let length = 0;
    while (length < buffer.length) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    const data = buffer.subarray(0, length);
    const end = headerEnd(data);
    if (end !== undefined && end <= MAX_HEADER_BLOCK_BYTES) return { text: data.subarray(0, end).toString('utf8'), truncated: false };
    const truncated = length > MAX_HEADER_BLOCK_BYTES;
    const text = data.subarray(0, Math.min(length, MAX_HEADER_BLOCK_BYTES)).toString('utf8');
    return { text: truncated || text.endsWith('\n') || text === '' ? text : `${text}\n`, truncated };
  } finally {
    await handle.close();
  }
}

/** Offset just past the last header line (its line ending included), if an empty line follows. */
function headerEnd(data: Buffer): number | undefined {
  // The message may start with the empty line (no header fields at all).
  if (data.subarray(0, 2).equals(Buffer.from('\r\n'))) return 0;
  if (data[0] === 0x0a) return 0;
  for (let i = data.indexOf(0x0a); i >= 0 && i < data.length; i = data.indexOf(0x0a, i + 1)) {
    const next = data[i + 1];
    if (next === 0x0a) return i + 1;
    if (next === 0x0d && data[i + 2] === 0x0a) return i + 1;
  }
  return undefined;
}
