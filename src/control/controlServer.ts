import { lstat, chmod, unlink } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { QueueControl } from '../delivery/queueControl.js';
import { PosternError, errorMessage } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { CHANGING_OPS, MAX_REQUEST_LINE_BYTES, controlRequestSchema, type ControlRequest, type ControlResponse } from './controlProtocol.js';

export interface ControlServerOptions {
  /** Absolute path of the Unix domain socket (see controlSocketPath). */
  path: string;
  control: QueueControl;
  logger: Logger;
}

export interface ControlServer {
  /** Stop answering, drop open connections and remove the socket file. */
  close(): Promise<void>;
}

/**
 * sun_path holds 108 bytes on Linux and 104 on the BSDs and macOS, NUL included. A longer
 * path is silently truncated by bind(2) there, which would put the socket somewhere else.
 */
const MAX_SOCKET_PATH_BYTES = process.platform === 'linux' ? 107 : 103;

/**
 * The gateway's end of `postern queue`: a Unix domain socket on which the CLI asks the
 * running delivery queue to list, retry, delete or bounce messages, so those changes never
 * race its workers (Postfix's postqueue talks to its queue manager for the same reason).
 *
 * Only the gateway's user may connect: the socket is made 0600 and lives in the spool
 * directory, which is 0700. Nothing more is asked of a client, as for Postfix's private/
 * sockets: whoever is that user can edit the spool files anyway.
 */
export async function startControlServer(options: ControlServerOptions): Promise<ControlServer> {
  const { path, control, logger } = options;
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH_BYTES) {
    throw new PosternError(
      'LISTEN_FAILED',
      `Cannot listen on control socket ${path}: the path is longer than ${MAX_SOCKET_PATH_BYTES} bytes, the limit for a Unix socket; use a shorter spool directory`,
    );
  }
  const connections = new Set<Socket>();
  // Half-open allowed: `printf '{"op":"list"}\n' | nc -U` closes its side right after the
  // request and still expects the answer.
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    connections.add(socket);
    socket.once('close', () => connections.delete(socket));
    serveConnection(socket, control, logger);
  });

  try {
    await listen(server, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw listenFailed(path, err);
    await removeStaleSocket(path);
    try {
      await listen(server, path);
    } catch (again) {
      throw listenFailed(path, again);
    }
  }
  try {
    // Between bind and this chmod the socket has the umask's mode; the 0700 spool directory
    // keeps other users out meanwhile.
    await chmod(path, 0o600);
  } catch (err) {
    await closeServer(server, connections);
    throw listenFailed(path, err);
  }
  logger.info({ path }, 'queue control socket listening');

  let closing: Promise<void> | undefined;
  return {
    close() {
      closing ??= closeServer(server, connections);
      return closing;
    },
  };
}

function listen(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => {
      server.off('listening', onListening);
      reject(err);
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(path);
  });
}

/**
 * A socket file is left behind when a gateway dies without closing it. Removing it is safe
 * only when nothing answers there: a live server means another gateway runs on this spool,
 * and two gateways on one spool would deliver every message twice.
 */
async function removeStaleSocket(path: string): Promise<void> {
  const answer = await probe(path);
  if (answer === 'answered') {
    throw new PosternError('LISTEN_FAILED', `Cannot listen on control socket ${path}: another process answers there (is a gateway already running on this spool?)`);
  }
  if (answer === 'gone') return;
  if (answer !== 'ECONNREFUSED') {
    throw new PosternError('LISTEN_FAILED', `Cannot listen on control socket ${path}: it exists and connecting to it failed with ${answer}`);
  }
  // ECONNREFUSED also comes back for a regular file at that path, which is not ours to remove.
  const stats = await lstat(path);
  if (!stats.isSocket()) throw new PosternError('LISTEN_FAILED', `Cannot listen on control socket ${path}: a file that is not a socket is in the way`);
  await unlink(path);
}

function probe(path: string): Promise<'answered' | 'gone' | string> {
  return new Promise((resolve) => {
    const socket = connect(path);
    socket.once('connect', () => {
      socket.destroy();
      resolve('answered');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      socket.destroy();
      resolve(err.code === 'ENOENT' ? 'gone' : (err.code ?? err.message));
    });
  });
}

function listenFailed(path: string, err: unknown): PosternError {
  if (err instanceof PosternError) return err;
  return new PosternError('LISTEN_FAILED', `Cannot listen on control socket ${path}: ${errorMessage(err)}`, { cause: err });
}

function closeServer(server: Server, connections: Set<Socket>): Promise<void> {
  return new Promise((resolve) => {
    // The listening socket's file is unlinked by Node when the server closes.
    server.close(() => resolve());
    // A client waiting on a long operation must not hold the gateway's shutdown; the
    // operation itself still completes in the delivery queue.
    for (const socket of connections) socket.destroy();
  });
}

/** Read request lines, answer each in order, close on an oversized line. */
function serveConnection(socket: Socket, control: QueueControl, logger: Logger): void {
  let pending: Buffer = Buffer.alloc(0);
  let answered: Promise<void> = Promise.resolve();
  let refused = false;

  const reply = (response: ControlResponse) => {
    if (!socket.destroyed && socket.writable) socket.write(`${JSON.stringify(response)}\n`);
  };

  socket.on('error', (err) => logger.debug({ err: errorMessage(err) }, 'queue control connection failed'));
  socket.on('data', (chunk: Buffer) => {
    if (refused) return;
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    let newline: number;
    while ((newline = pending.indexOf(0x0a)) >= 0) {
      const line = pending.subarray(0, newline);
      pending = pending.subarray(newline + 1);
      if (line.length > MAX_REQUEST_LINE_BYTES) return refuse();
      const text = line.toString('utf8').trim();
      if (text === '') continue;
      answered = answered.then(async () => reply(await answer(text, control, logger)));
    }
    if (pending.length > MAX_REQUEST_LINE_BYTES) refuse();
  });
  socket.on('end', () => {
    if (refused) return;
    // The client is done sending: a last line without a newline is still a request.
    const text = pending.toString('utf8').trim();
    pending = Buffer.alloc(0);
    if (text !== '') answered = answered.then(async () => reply(await answer(text, control, logger)));
    void answered.then(() => socket.end());
  });

  // A line past the cap is not a request; answering it and hanging up keeps a runaway
  // client from making the gateway buffer without end.
  function refuse(): void {
    refused = true;
    pending = Buffer.alloc(0);
    logger.warn({ limit: MAX_REQUEST_LINE_BYTES }, 'queue control request line too long; connection closed');
    void answered.then(() => {
      reply({ ok: false, error: `request line longer than ${MAX_REQUEST_LINE_BYTES} bytes` });
      socket.end();
    });
  }
}

async function answer(text: string, control: QueueControl, logger: Logger): Promise<ControlResponse> {
  const parsed = parseRequest(text);
  if (typeof parsed === 'string') {
    logger.debug({ error: parsed }, 'queue control request refused');
    return { ok: false, error: parsed };
  }
  try {
    const result = await perform(parsed, control);
    if (CHANGING_OPS.has(parsed.op)) {
      logger.info({ op: parsed.op, ...('id' in parsed && parsed.id !== undefined && { queueId: parsed.id }), result }, 'queue operation');
    }
    return { ok: true, result };
  } catch (err) {
    logger.error({ op: parsed.op, ...('id' in parsed && parsed.id !== undefined && { queueId: parsed.id }), err: errorMessage(err) }, 'queue operation failed');
    return { ok: false, error: errorMessage(err) };
  }
}

/** The request, or what is wrong with it. */
function parseRequest(text: string): ControlRequest | string {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    return `request is not JSON: ${errorMessage(err)}`;
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return 'request must be a JSON object';
  const op = (data as Record<string, unknown>).op;
  if (!['list', 'get', 'retry', 'delete', 'bounce'].includes(op as string)) {
    return `unknown op ${JSON.stringify(op) ?? 'undefined'}: expected list, get, retry, delete or bounce`;
  }
  const result = controlRequestSchema.safeParse(data);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const at = issue.path.map(String).join('.') || 'request';
    return `${at}: ${issue.message}`;
  }
  return result.data;
}

async function perform(request: ControlRequest, control: QueueControl): Promise<unknown> {
  switch (request.op) {
    case 'list':
      return control.list();
    case 'get':
      return control.get(request.id) ?? null;
    case 'retry':
      return control.retry(request.id);
    case 'delete':
      return control.delete(request.id);
    case 'bounce':
      return control.bounce(request.id);
  }
}
