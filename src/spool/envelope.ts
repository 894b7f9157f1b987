import { z } from 'zod';
import type { EightBitPlacement } from './eightBitContent.js';
import { QUEUE_ID_PATTERN } from './queueId.js';

/**
 * The envelope record stored next to each spooled message: who it is from and to (the SMTP
 * envelope, RFC 5321 section 2.3.1, which may differ from the header fields), how it arrived,
 * and the delivery state of every recipient. It is the only state delivery keeps, so a
 * restart resumes exactly where the last written record left off.
 */

export type RecipientStatus = 'pending' | 'delivered' | 'failed';

export interface RecipientState {
  address: string;
  status: RecipientStatus;
  /** Attempts made for this recipient, whatever their outcome. */
  attempts: number;
  /** The last reply for this recipient, as the remote server (or the sender) worded it. */
  lastReply?: string;
  lastAttemptAt?: number;
  /** The host that gave lastReply, when a server did (a bounce names it as Remote-MTA). */
  remoteMta?: string;
  /**
   * For a failed recipient of a message with a sender: the queue ID of the delivery status
   * notification reporting it. Recorded with the failure, before the notification is queued,
   * so a restart in between queues it under the same ID instead of twice.
   */
  dsnId?: string;
  /** The notification named by dsnId is in the queue. */
  dsnSent?: boolean;
}

export interface Envelope {
  version: 1;
  id: string;
  /** When the message was committed, ms since the epoch. */
  receivedAt: number;
  /** The reverse-path; '' is the null sender <> of bounces (RFC 5321 section 4.5.5). */
  sender: string;
  recipients: RecipientState[];
  /** Bytes of the message file. */
  size: number;
  /**
   * Header fields Postern sends in front of the message file: its Received: header and what
   * policy rules (later, DKIM) add. Raw lines, each ending in CRLF. Kept apart so the message
   * file stays exactly what the client sent, which rules read back and nothing rewrites.
   */
  headers?: string;
  /** The authenticated submitter, if any. */
  user?: string;
  clientIp?: string;
  /** The client asked for SMTPUTF8 (RFC 6531); delivery must keep that promise. */
  smtpUtf8?: boolean;
  /** BODY= from MAIL FROM (RFC 6152). */
  bodyType?: '7bit' | '8bitmime';
  /**
   * Where the message (with the header fields sent in front of it) first holds a byte beyond
   * ASCII; absent for ASCII alone, and in records written before this was recorded.
   */
  eightBit?: EightBitPlacement;
  /** Delivery attempts made for the message as a whole. */
  attempts: number;
  /** Not to be attempted before this time, ms since the epoch. */
  nextAttemptAt: number;
  /** The queue ID of the delay warning sent (or being sent) to the sender, as dsnId above. */
  delayWarningId?: string;
  delayWarningSent?: boolean;
}

const timestamp = z.number().int().nonnegative();

const recipientSchema = z.object({
  address: z.string(),
  status: z.enum(['pending', 'delivered', 'failed']),
  attempts: z.number().int().nonnegative(),
  lastReply: z.string().optional(),
  lastAttemptAt: timestamp.optional(),
  remoteMta: z.string().optional(),
  dsnId: z.string().regex(QUEUE_ID_PATTERN, 'is not a queue ID').optional(),
  dsnSent: z.boolean().optional(),
});

const envelopeSchema = z.object({
  version: z.literal(1),
  id: z.string().regex(QUEUE_ID_PATTERN, 'is not a queue ID'),
  receivedAt: timestamp,
  sender: z.string(),
  recipients: z.array(recipientSchema).min(1),
  size: z.number().int().nonnegative(),
  headers: z.string().optional(),
  user: z.string().optional(),
  clientIp: z.string().optional(),
  smtpUtf8: z.boolean().optional(),
  bodyType: z.enum(['7bit', '8bitmime']).optional(),
  eightBit: z.enum(['headers', 'body']).optional(),
  attempts: z.number().int().nonnegative(),
  nextAttemptAt: timestamp,
  delayWarningId: z.string().regex(QUEUE_ID_PATTERN, 'is not a queue ID').optional(),
  delayWarningSent: z.boolean().optional(),
});

/**
 * Parse a stored envelope record. Throws an Error naming the first problem (and its field)
 * when the text is not JSON or not an envelope; the caller decides what a bad record means.
 */
export function parseEnvelope(text: string): Envelope {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new Error(`not JSON: ${(err as Error).message}`);
  }
  return validateEnvelope(data);
}

/** Check that `data` is an envelope; returns it typed, throws an Error naming the bad field. */
export function validateEnvelope(data: unknown): Envelope {
  const result = envelopeSchema.safeParse(data);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const at = issue.path.map(String).join('.') || '(top level)';
    throw new Error(`invalid envelope: ${at}: ${issue.message}`);
  }
  return result.data as Envelope;
}

/** Bytes delivery sends: Postern's header fields, then the message file. */
export function outgoingSize(envelope: Envelope): number {
  return envelope.size + (envelope.headers ? Buffer.byteLength(envelope.headers) : 0);
}

export function serializeEnvelope(envelope: Envelope): string {
  return `${JSON.stringify(envelope, null, 2)}\n`;
}

/** A deep copy, so callers of the index can never change what the spool holds. */
export function copyEnvelope(envelope: Envelope): Envelope {
  return { ...envelope, recipients: envelope.recipients.map((r) => ({ ...r })) };
}

/** Recipients still waiting for delivery. */
export function pendingRecipients(envelope: Envelope): RecipientState[] {
  return envelope.recipients.filter((r) => r.status === 'pending');
}
