import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { after, describe, test } from 'node:test';
import { callControl, ControlError, NoGatewayError } from '../../../src/control/controlClient.js';
import { startControlServer, type ControlServer } from '../../../src/control/controlServer.js';
import type { QueueControl } from '../../../src/delivery/queueControl.js';
import type { Envelope } from '../../../src/spool/envelope.js';
import { isPosternError } from '../../../src/util/errors.js';
import { createLogger, silentLogger, type Logger } from '../../../src/util/logger.js';

const ID_A = '01JAAAAAAAAAAAAA';
const ID_B = '01JBBBBBBBBBBBBB';
const UNKNOWN = '01JZZZZZZZZZZZZZ';

function envelope(id: string): Envelope {
  return {
    version: 1,
    id,
    receivedAt: Date.UTC(2026, 0, 1),
    sender: 'alice@example.com',
    recipients: [{ address: 'bob@example.net', status: 'pending', attempts: 0 }],
    size: 42,
    attempts: 0,
    nextAttemptAt: Date.UTC(2026, 0, 1),
  };
}

/** The seam: what a delivery queue would do, reduced to a map and a record of calls. */
class RecordingControl implements QueueControl {
  readonly calls: string[] = [];
  readonly messages = new Map([ID_A, ID_B].map((id) => [id, envelope(id)]));
  failWith: Error | undefined;

  list(): Envelope[] {
    this.calls.push('list');
    return [...this.messages.values()];
  }
  get(id: string): Envelope | undefined {
    this.calls.push(`get ${id}`);
    return this.messages.get(id);
  }
  async retry(id?: string): Promise<number> {
    this.calls.push(`retry ${id ?? '*'}`);
    if (this.failWith) throw this.failWith;
    return id === undefined ? this.messages.size : Number(this.messages.has(id));
  }
  async delete(id: string): Promise<boolean> {
    this.calls.push(`delete ${id}`);
    return this.messages.delete(id);
  }
  async bounce(id: string): Promise<boolean> {
    this.calls.push(`bounce ${id}`);
    return this.messages.has(id);
  }
}

async function socketDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'postern-control-'));
  after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function serve(options: { logger?: Logger } = {}): Promise<{ path: string; control: RecordingControl; server: ControlServer }> {
  const path = join(await socketDir(), 'control.sock');
  const control = new RecordingControl();
  const server = await startControlServer({ path, control, logger: options.logger ?? silentLogger() });
  after(() => server.close());
  return { path, control, server };
}

/** A hand-driven connection, for sending what the real client never would. */
async function rawConnection(path: string): Promise<{ socket: Socket; send(text: string | Buffer): void; next(): Promise<Record<string, unknown>>; closed: Promise<void> }> {
  const socket = connect(path);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const lines: string[] = [];
  const waiting: Array<(line: string) => void> = [];
  createInterface({ input: socket }).on('line', (line) => {
    const waiter = waiting.shift();
    if (waiter) waiter(line);
    else lines.push(line);
  });
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  after(() => socket.destroy());
  return {
    socket,
    send: (text) => socket.write(text),
    next: async () => JSON.parse(lines.shift() ?? (await new Promise<string>((resolve) => waiting.push(resolve)))) as Record<string, unknown>,
    closed,
  };
}

describe('the queue control server', () => {
  test('carries each operation and its ID to the queue and returns the result', async () => {
    const { path, control } = await serve();
    const listed = await callControl(path, { op: 'list' }, 5000);
    assert.deepEqual(
      listed.map((e) => e.id),
      [ID_A, ID_B],
    );
    assert.equal((await callControl(path, { op: 'get', id: ID_A }, 5000))?.id, ID_A);
    assert.equal(await callControl(path, { op: 'get', id: UNKNOWN }, 5000), null);
    assert.equal(await callControl(path, { op: 'retry' }, 5000), 2);
    assert.equal(await callControl(path, { op: 'retry', id: ID_B }, 5000), 1);
    assert.equal(await callControl(path, { op: 'bounce', id: ID_A }, 5000), true);
    assert.equal(await callControl(path, { op: 'delete', id: ID_A }, 5000), true);
    assert.equal(await callControl(path, { op: 'delete', id: ID_A }, 5000), false);
    assert.deepEqual(control.calls, ['list', `get ${ID_A}`, `get ${UNKNOWN}`, 'retry *', `retry ${ID_B}`, `bounce ${ID_A}`, `delete ${ID_A}`, `delete ${ID_A}`]);
  });

  test('answers malformed JSON, an unknown op and a bad ID with errors and keeps serving the connection', async () => {
    const { path, control } = await serve();
    const conn = await rawConnection(path);

    conn.send('{"op": "list"\n');
    const notJson = await conn.next();
    assert.equal(notJson.ok, false);
    assert.match(String(notJson.error), /not JSON/);

    conn.send('{"op":"flush"}\n');
    assert.deepEqual(await conn.next(), { ok: false, error: 'unknown op "flush": expected list, get, retry, delete or bounce' });

    conn.send('["list"]\n');
    assert.equal((await conn.next()).ok, false);

    conn.send('{"op":"delete","id":"../../etc/passwd"}\n');
    const badId = await conn.next();
    assert.equal(badId.ok, false);
    assert.match(String(badId.error), /^id: is not a queue ID/);

    conn.send('{"op":"bounce"}\n');
    assert.equal((await conn.next()).ok, false);

    conn.send(`{"op":"get","id":"${ID_A}","extra":1}\n`);
    assert.equal((await conn.next()).ok, false);

    conn.send(`{"op":"get","id":"${ID_B}"}\n`);
    const answer = await conn.next();
    assert.equal(answer.ok, true);
    assert.equal((answer.result as Envelope).id, ID_B);
    assert.deepEqual(control.calls, [`get ${ID_B}`], 'no refused request reached the queue');
  });

  test('answers pipelined requests in the order they were sent', async () => {
    const { path } = await serve();
    const conn = await rawConnection(path);
    conn.send(`{"op":"delete","id":"${ID_A}"}\n{"op":"list"}\n{"op":"delete","id":"${ID_A}"}\n`);
    assert.deepEqual(await conn.next(), { ok: true, result: true });
    assert.equal(((await conn.next()).result as Envelope[]).length, 1);
    assert.deepEqual(await conn.next(), { ok: true, result: false });
  });

  test('answers a client that closes its side right after the request', async () => {
    const { path } = await serve();
    const conn = await rawConnection(path);
    conn.socket.end(`{"op":"retry","id":"${ID_A}"}`);
    assert.deepEqual(await conn.next(), { ok: true, result: 1 });
    await conn.closed;
  });

  test('refuses an oversized request line, hangs up, and still serves new connections', async () => {
    const { path, control } = await serve();
    const conn = await rawConnection(path);
    conn.send(`{"op":"list","pad":"${'x'.repeat(8000)}`);
    const refused = await conn.next();
    assert.equal(refused.ok, false);
    assert.match(String(refused.error), /longer than 4096 bytes/);
    await conn.closed;
    assert.deepEqual(control.calls, []);
    assert.equal((await callControl(path, { op: 'list' }, 5000)).length, 2);
  });

  test('reports a failing operation as an error answer, which the client throws', async () => {
    const { path, control } = await serve();
    control.failWith = new Error('Cannot update message: disk full');
    await assert.rejects(callControl(path, { op: 'retry' }, 5000), (err) => err instanceof ControlError && /disk full/.test(err.message));
    control.failWith = undefined;
    assert.equal(await callControl(path, { op: 'retry' }, 5000), 2);
  });

  test('logs each changing operation with its ID at info, and not the looking ones', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    const { path } = await serve({ logger: createLogger('info', sink) });
    await callControl(path, { op: 'list' }, 5000);
    await callControl(path, { op: 'delete', id: ID_B }, 5000);
    const operations = lines.filter((line) => line.msg === 'queue operation');
    assert.deepEqual(
      operations.map((line) => [line.level, line.op, line.queueId, line.result]),
      [['info', 'delete', ID_B, true]],
    );
  });

  test('makes the socket readable and writable by its owner only', async () => {
    const { path } = await serve();
    assert.equal((await stat(path)).mode & 0o777, 0o600);
  });

  test('removes the socket file when closed, after which clients learn that no gateway runs', async () => {
    const { path, server } = await serve();
    await server.close();
    await assert.rejects(stat(path), { code: 'ENOENT' });
    await assert.rejects(callControl(path, { op: 'list' }, 5000), (err) => err instanceof NoGatewayError && err.code === 'ENOENT');
  });

  test('replaces a socket file left behind by a process that died', async () => {
    const path = join(await socketDir(), 'control.sock');
    // A process killed while listening leaves its socket file, with nobody behind it.
    const killed = spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    assert.equal(killed.signal, 'SIGKILL');
    assert.ok((await stat(path)).isSocket(), 'the stale socket file is there');
    await assert.rejects(callControl(path, { op: 'list' }, 5000), (err) => err instanceof NoGatewayError && err.code === 'ECONNREFUSED');

    const server = await startControlServer({ path, control: new RecordingControl(), logger: silentLogger() });
    after(() => server.close());
    assert.equal((await callControl(path, { op: 'list' }, 5000)).length, 2);
  });

  test('refuses to start where another server answers, and leaves that one serving', async () => {
    const { path } = await serve();
    await assert.rejects(
      startControlServer({ path, control: new RecordingControl(), logger: silentLogger() }),
      (err) => isPosternError(err, 'LISTEN_FAILED') && /another process answers/.test(err.message),
    );
    assert.equal((await callControl(path, { op: 'list' }, 5000)).length, 2);
  });

  test('refuses to start over a file that is not a socket, and leaves it alone', async () => {
    const path = join(await socketDir(), 'control.sock');
    await writeFile(path, 'not a socket');
    await assert.rejects(startControlServer({ path, control: new RecordingControl(), logger: silentLogger() }), (err) => isPosternError(err, 'LISTEN_FAILED'));
    assert.ok((await stat(path)).isFile());
  });

  test('refuses a socket path too long for a Unix socket instead of binding a truncated one', async () => {
    const path = join(await socketDir(), `${'x'.repeat(120)}.sock`);
    await assert.rejects(startControlServer({ path, control: new RecordingControl(), logger: silentLogger() }), (err) => isPosternError(err, 'LISTEN_FAILED') && /longer than/.test(err.message));
  });
});
