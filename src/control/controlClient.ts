import { connect, type Socket } from 'node:net';
import { validateEnvelope } from '../spool/envelope.js';
import { errorMessage } from '../util/errors.js';
import type { ControlOp, ControlRequest, ControlResponse, ControlResults } from './controlProtocol.js';

/**
 * Nothing listens on the control socket: the file is missing (ENOENT) or left behind by a
 * gateway that is gone (ECONNREFUSED). Then no gateway runs on this spool, and a command may
 * act on the spool itself. Any other failure must not lead to that: a gateway may be there.
 */
export class NoGatewayError extends Error {
  constructor(
    readonly path: string,
    readonly code: 'ENOENT' | 'ECONNREFUSED',
  ) {
    super(`No running gateway answers on ${path} (${code})`);
    this.name = 'NoGatewayError';
  }
}

/** The gateway was reached but the call failed: it refused the request, timed out, or hung up. */
export class ControlError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ControlError';
  }
}

export function isNoGateway(err: unknown): err is NoGatewayError {
  return err instanceof NoGatewayError;
}

export type RequestFor<Op extends ControlOp> = Extract<ControlRequest, { op: Op }>;

export interface ControlConnection {
  /** Send one request and wait for its answer; rejects with ControlError. */
  call<Op extends ControlOp>(request: RequestFor<Op>, timeoutMs: number): Promise<ControlResults[Op]>;
  close(): void;
}

interface Waiter {
  resolve(response: ControlResponse): void;
  reject(err: Error): void;
}

/** Connect to a gateway's control socket. Rejects with NoGatewayError or ControlError. */
export function connectControl(path: string, timeoutMs = 5000): Promise<ControlConnection> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new ControlError(`No answer from the control socket ${path} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      socket.destroy();
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') reject(new NoGatewayError(path, err.code));
      else reject(new ControlError(`Cannot connect to the control socket ${path}: ${errorMessage(err)}`, { cause: err }));
    });
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(new LineConnection(path, socket));
    });
  });
}

/** Connect, make one call, hang up. Rejects with NoGatewayError or ControlError. */
export async function callControl<Op extends ControlOp>(path: string, request: RequestFor<Op>, timeoutMs: number): Promise<ControlResults[Op]> {
  const connection = await connectControl(path, timeoutMs);
  try {
    return await connection.call(request, timeoutMs);
  } finally {
    connection.close();
  }
}

/** Answers come back in request order (see controlProtocol.ts), so a FIFO of waiters pairs them. */
class LineConnection implements ControlConnection {
  private readonly waiters: Waiter[] = [];
  private buffered = '';
  private failure: Error | undefined;

  constructor(
    private readonly path: string,
    private readonly socket: Socket,
  ) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.receive(chunk));
    socket.on('error', (err) => this.fail(new ControlError(`The control socket ${path} failed: ${errorMessage(err)}`, { cause: err })));
    socket.on('close', () => this.fail(new ControlError(`The gateway closed the control socket ${path} before answering`)));
  }

  async call<Op extends ControlOp>(request: RequestFor<Op>, timeoutMs: number): Promise<ControlResults[Op]> {
    const response = await this.send(request, timeoutMs);
    if (!response.ok) throw new ControlError(`The gateway refused ${request.op}: ${response.error}`);
    return checkResult(request.op, response.result) as ControlResults[Op];
  }

  close(): void {
    this.socket.destroy();
  }

  private send(request: ControlRequest, timeoutMs: number): Promise<ControlResponse> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        // A late answer would pair with the next request; this connection is done.
        this.fail(
          new ControlError(
            `No answer to ${request.op} from the gateway on ${this.path} within ${timeoutMs} ms; it may still carry it out (see \`postern queue list\`)`,
          ),
        );
      }, timeoutMs);
      this.waiters.push({
        resolve: (response) => {
          clearTimeout(timer);
          resolve(response);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
      this.socket.write(`${JSON.stringify(request)}\n`);
    });
  }

  private receive(chunk: string): void {
    this.buffered += chunk;
    let newline: number;
    while ((newline = this.buffered.indexOf('\n')) >= 0) {
      const line = this.buffered.slice(0, newline);
      this.buffered = this.buffered.slice(newline + 1);
      const waiter = this.waiters.shift();
      if (!waiter) return this.fail(new ControlError(`The gateway on ${this.path} sent an answer nobody asked for`));
      let response: ControlResponse;
      try {
        response = parseResponse(line);
      } catch (err) {
        waiter.reject(new ControlError(`The gateway on ${this.path} sent a broken answer: ${errorMessage(err)}`));
        return this.fail(new ControlError(`The gateway on ${this.path} sent a broken answer`));
      }
      waiter.resolve(response);
    }
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const waiter of this.waiters.splice(0)) waiter.reject(err);
    this.socket.destroy();
  }
}

function parseResponse(line: string): ControlResponse {
  const data = JSON.parse(line) as unknown;
  if (typeof data === 'object' && data !== null) {
    const response = data as Record<string, unknown>;
    if (response.ok === true && 'result' in response) return { ok: true, result: response.result };
    if (response.ok === false && typeof response.error === 'string') return { ok: false, error: response.error };
  }
  throw new Error('not {"ok":true,"result":...} or {"ok":false,"error":"..."}');
}

/** The result has the shape the operation promises; a gateway of another version may differ. */
function checkResult(op: ControlOp, result: unknown): ControlResults[ControlOp] {
  try {
    switch (op) {
      case 'list':
        if (!Array.isArray(result)) throw new Error('expected a list of envelopes');
        return result.map((envelope) => validateEnvelope(envelope));
      case 'get':
        return result === null ? null : validateEnvelope(result);
      case 'retry':
        if (typeof result !== 'number' || !Number.isInteger(result) || result < 0) throw new Error('expected a count');
        return result;
      case 'delete':
      case 'bounce':
        if (typeof result !== 'boolean') throw new Error('expected true or false');
        return result;
    }
  } catch (err) {
    throw new ControlError(`The gateway answered ${op} with something unexpected: ${errorMessage(err)}`);
  }
}
