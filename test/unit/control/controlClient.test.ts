import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { callControl, ControlError, isNoGateway, NoGatewayError } from '../../../src/control/controlClient.js';

/** A socket server that answers every request line with whatever `respond` says (or nothing). */
async function fakeGateway(respond: (line: string, socket: Socket) => void): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'postern-client-'));
  const path = join(dir, 'control.sock');
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    let buffered = '';
    socket.on('data', (chunk) => {
      buffered += chunk.toString();
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        respond(buffered.slice(0, newline), socket);
        buffered = buffered.slice(newline + 1);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  after(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });
  return path;
}

describe('the queue control client', () => {
  test('tells a missing socket apart as "no gateway"', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'postern-client-'));
    after(() => rm(dir, { recursive: true, force: true }));
    const err = await callControl(join(dir, 'control.sock'), { op: 'list' }, 5000).catch((e: unknown) => e);
    assert.ok(isNoGateway(err));
    assert.equal((err as NoGatewayError).code, 'ENOENT');
  });

  test('throws the error a gateway answers with, which is not "no gateway"', async () => {
    const path = await fakeGateway((_line, socket) => socket.write('{"ok":false,"error":"disk full"}\n'));
    const err = await callControl(path, { op: 'retry' }, 5000).catch((e: unknown) => e);
    assert.ok(err instanceof ControlError);
    assert.equal(isNoGateway(err), false);
    assert.match(err.message, /refused retry: disk full/);
  });

  test('refuses an answer of the wrong shape instead of passing it on', async () => {
    const path = await fakeGateway((_line, socket) => socket.write('{"ok":true,"result":[{"id":"nope"}]}\n'));
    await assert.rejects(callControl(path, { op: 'list' }, 5000), (err) => err instanceof ControlError && /unexpected/.test(err.message));
  });

  test('refuses an answer that is not JSON', async () => {
    const path = await fakeGateway((_line, socket) => socket.write('hello\n'));
    await assert.rejects(callControl(path, { op: 'list' }, 5000), (err) => err instanceof ControlError && /broken answer/.test(err.message));
  });

  test('gives up on a gateway that does not answer, saying the operation may still happen', async () => {
    const path = await fakeGateway(() => undefined);
    await assert.rejects(callControl(path, { op: 'delete', id: '01JAAAAAAAAAAAAA' }, 50), (err) => err instanceof ControlError && /may still carry it out/.test(err.message));
  });

  test('fails when the gateway hangs up without answering', async () => {
    const path = await fakeGateway((_line, socket) => socket.destroy());
    await assert.rejects(callControl(path, { op: 'list' }, 5000), (err) => err instanceof ControlError && /closed the control socket/.test(err.message));
  });
});
