import { fork, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import { parseBenchId } from './benchMessage.js';

/**
 * One message at the sink: its X-Bench-Id, when it arrived, and the a= values of its
 * DKIM-Signature fields joined by '+' ("rsa-sha256+ed25519-sha256"; '' when unsigned).
 */
export type SinkDelivery = [id: string, at: number, dkim: string];

/** What the sink process tells its parent over IPC. */
export type SinkMessage =
  | { type: 'listening'; port: number }
  | { type: 'deliveries'; deliveries: SinkDelivery[]; withoutId: number }
  | { type: 'error'; message: string };

const REPO = resolve(import.meta.dirname, '../..');

/** How the messages of one run arrived signed: signed ones, and signatures per a= value. */
export interface DkimAtSink {
  /** Messages that carried at least one DKIM-Signature. */
  signedMessages: number;
  /** Signatures per algorithm, e.g. { "rsa-sha256": 40, "ed25519-sha256": 40 } when dual-signed. */
  byAlgorithm: Record<string, number>;
}

/**
 * The parent's side of the sink: starts sinkProcess.ts as a child and keeps, per bench run id,
 * when each message number first arrived, and how it was DKIM-signed. A message delivered
 * twice counts once, at its first arrival.
 */
export class Sink {
  private readonly runs = new Map<string, Map<number, number>>();
  private readonly dkim = new Map<string, DkimAtSink>();
  /** Messages that carried no X-Bench-Id (e.g. Postern's bounces, or someone else's mail). */
  withoutId = 0;

  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
  ) {
    child.on('message', (message: SinkMessage) => {
      if (message.type === 'deliveries') this.record(message);
    });
  }

  /** Forks the sink on 127.0.0.1:`port` (0 picks a free one) and waits until it listens. */
  static async start(port = 0): Promise<Sink> {
    const child = fork(join(import.meta.dirname, 'sinkProcess.ts'), [String(port)], {
      cwd: REPO,
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const listening = await new Promise<number>((resolvePort, reject) => {
      const onExit = (code: number | null) => reject(new Error(`The bench sink exited with ${code} before listening: ${stderr.trim()}`));
      child.once('exit', onExit);
      child.on('message', (message: SinkMessage) => {
        if (message.type === 'listening') {
          child.off('exit', onExit);
          resolvePort(message.port);
        } else if (message.type === 'error') {
          reject(new Error(`The bench sink cannot listen on 127.0.0.1:${port}: ${message.message}`));
        }
      });
    });
    return new Sink(child, listening);
  }

  /** Per message number of `runId`, when the sink had it. */
  deliveries(runId: string): ReadonlyMap<number, number> {
    return this.runs.get(runId) ?? new Map();
  }

  delivered(runId: string): number {
    return this.runs.get(runId)?.size ?? 0;
  }

  /** The DKIM signatures on the messages of `runId` (each message counted at its first arrival). */
  dkimSignatures(runId: string): DkimAtSink {
    const seen = this.dkim.get(runId);
    return seen ? { signedMessages: seen.signedMessages, byAlgorithm: { ...seen.byAlgorithm } } : { signedMessages: 0, byAlgorithm: {} };
  }

  /** Stops the child process and waits for it to exit. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolveExit) => this.child.once('exit', () => resolveExit()));
    this.child.send({ type: 'stop' });
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  }

  private record(message: { deliveries: SinkDelivery[]; withoutId: number }): void {
    this.withoutId += message.withoutId;
    for (const [id, at, dkim] of message.deliveries) {
      const parsed = parseBenchId(id);
      if (!parsed) {
        this.withoutId++;
        continue;
      }
      let run = this.runs.get(parsed.runId);
      if (!run) this.runs.set(parsed.runId, (run = new Map()));
      if (run.has(parsed.n)) continue;
      run.set(parsed.n, at);
      if (dkim !== '') this.countSignatures(parsed.runId, dkim.split('+'));
    }
  }

  private countSignatures(runId: string, algorithms: string[]): void {
    let seen = this.dkim.get(runId);
    if (!seen) this.dkim.set(runId, (seen = { signedMessages: 0, byAlgorithm: {} }));
    seen.signedMessages++;
    for (const algorithm of algorithms) seen.byAlgorithm[algorithm] = (seen.byAlgorithm[algorithm] ?? 0) + 1;
  }
}
