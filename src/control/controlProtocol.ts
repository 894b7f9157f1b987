import { z } from 'zod';
import type { Envelope } from '../spool/envelope.js';
import { QUEUE_ID_PATTERN } from '../spool/queueId.js';

/**
 * The control socket's protocol, shared by the gateway's server and the CLI's client: one
 * JSON object per line each way (newline-delimited JSON), one response per request, in order.
 *
 *   {"op":"list"}                      -> {"ok":true,"result":[envelope, ...]}
 *   {"op":"get","id":"<ID>"}           -> {"ok":true,"result":envelope | null}
 *   {"op":"retry"}  / +"id"            -> {"ok":true,"result":<messages matched>}
 *   {"op":"delete"|"bounce","id":...}  -> {"ok":true,"result":true | false (no such message)}
 *   anything wrong                     -> {"ok":false,"error":"<what and why>"}
 */

/** Longest request line accepted; a real request is well under 100 bytes. */
export const MAX_REQUEST_LINE_BYTES = 4096;

const queueId = z.string().regex(QUEUE_ID_PATTERN, 'is not a queue ID');

export const controlRequestSchema = z.discriminatedUnion('op', [
  z.strictObject({ op: z.literal('list') }),
  z.strictObject({ op: z.literal('get'), id: queueId }),
  z.strictObject({ op: z.literal('retry'), id: queueId.optional() }),
  z.strictObject({ op: z.literal('delete'), id: queueId }),
  z.strictObject({ op: z.literal('bounce'), id: queueId }),
]);

export type ControlRequest = z.infer<typeof controlRequestSchema>;
export type ControlOp = ControlRequest['op'];

/** What each operation answers with. */
export interface ControlResults {
  list: Envelope[];
  get: Envelope | null;
  retry: number;
  delete: boolean;
  bounce: boolean;
}

export type ControlResponse = { ok: true; result: unknown } | { ok: false; error: string };

/** Operations that change the queue, as opposed to looking at it; these are logged. */
export const CHANGING_OPS: ReadonlySet<ControlOp> = new Set(['retry', 'delete', 'bounce']);
