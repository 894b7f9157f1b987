import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';

/** A redis-server of the test's own on `port` of 127.0.0.1, with no persistence; resolves once it accepts connections. */
export async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  child.once('error', () => undefined);
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const up = await new Promise<boolean>((done) => {
      const socket = connect({ host: '127.0.0.1', port }, () => (socket.destroy(), done(true)));
      socket.once('error', () => done(false));
    });
    if (up) return child;
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('redis-server did not start: it must be installed (apt-get install redis-server)');
}

/** Stops a child process started by a test and waits for it to exit. */
export async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}
