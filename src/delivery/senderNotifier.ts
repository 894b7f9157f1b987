import { copyEnvelope, type Envelope, type RecipientState } from '../spool/envelope.js';
import { eightBitPlacementOf } from '../spool/eightBitContent.js';
import type { Spool } from '../spool/spool.js';
import type { Logger } from '../util/logger.js';
import { buildDsn, dsnTransport, readHeaderBlock, type DsnRecipient } from './dsn.js';

export interface SenderNotifierOptions {
  spool: Spool;
  /** This gateway's hostname: the Reporting-MTA and the MAILER-DAEMON address of notifications. */
  hostname: string;
  /** Warn the sender once a message is still undelivered this long after acceptance; 0: never. */
  delayWarningMs: number;
  /** When a deferred message is given up, for the warning's Will-Retry-Until. */
  maxAgeMs: number;
  logger: Logger;
  /** Called with each notification once it is queued (for metrics). */
  onQueued?: (kind: 'bounce' | 'delay') => void;
}

/** The original headers returned in a notification are cut at this size. */
const RETURNED_HEADERS_LIMIT = 64 * 1024;

/**
 * Tells senders what became of their messages with delivery status notifications (RFC 3464):
 * a bounce for recipients that failed, a warning for a message long delayed. A notification
 * is an ordinary queued message from the null sender <>, delivered like any other, and never
 * answered by another one (RFC 5321 section 6.1: no bounce of a bounce).
 *
 * Two steps, so a crash never sends one twice nor loses one: plan() records the queue ID a
 * notification will have in the original's envelope (which the caller writes to disk), then
 * send() queues it under that ID, skipping one already queued.
 */
export class SenderNotifier {
  /**
   * Notifications this process queued: a record that failed after the queuing must not queue
   * one again on the next attempt, even after it was delivered and left the spool.
   */
  private readonly queuedHere = new Set<string>();

  constructor(private readonly options: SenderNotifierOptions) {}

  /**
   * At start, before anything is sent: messages whose planned notifications are already in the
   * spool (a crash came between queuing them and recording it). Returns each such envelope
   * with those notifications marked sent, and the notifications' IDs.
   */
  queuedButUnrecorded(spool: Pick<Spool, 'queued' | 'has'>): Array<{ envelope: Envelope; noticeIds: string[] }> {
    const fixes: Array<{ envelope: Envelope; noticeIds: string[] }> = [];
    for (const stored of spool.queued()) {
      if (!this.owes(stored as Envelope)) continue;
      const envelope = copyEnvelope(stored as Envelope);
      const noticeIds = new Set<string>();
      for (const recipient of envelope.recipients) {
        if (recipient.dsnId !== undefined && !recipient.dsnSent && spool.has(recipient.dsnId)) {
          recipient.dsnSent = true;
          noticeIds.add(recipient.dsnId);
        }
      }
      if (envelope.delayWarningId !== undefined && !envelope.delayWarningSent && spool.has(envelope.delayWarningId)) {
        envelope.delayWarningSent = true;
        noticeIds.add(envelope.delayWarningId);
      }
      if (noticeIds.size > 0) fixes.push({ envelope, noticeIds: [...noticeIds] });
    }
    return fixes;
  }

  /** The message's notifications are recorded as sent: no need to remember them here any more. */
  recorded(envelope: Envelope): void {
    for (const recipient of envelope.recipients) if (recipient.dsnId !== undefined && recipient.dsnSent) this.queuedHere.delete(recipient.dsnId);
    if (envelope.delayWarningId !== undefined && envelope.delayWarningSent) this.queuedHere.delete(envelope.delayWarningId);
  }

  /**
   * Give an ID to every notification the message owes and has none yet: failed recipients not
   * yet reported, and the delay warning once it is due. Changes `envelope` in place; true when
   * it changed it (the caller must record it before calling send()).
   */
  plan(envelope: Envelope, now: number): boolean {
    if (envelope.sender === '') return false;
    let changed = false;
    const unreported = envelope.recipients.filter((r) => r.status === 'failed' && !r.dsnSent && r.dsnId === undefined);
    if (unreported.length > 0) {
      const id = this.options.spool.reserveId();
      for (const recipient of unreported) recipient.dsnId = id;
      changed = true;
    }
    const { delayWarningMs } = this.options;
    if (
      delayWarningMs > 0 &&
      envelope.delayWarningId === undefined &&
      now - envelope.receivedAt >= delayWarningMs &&
      envelope.recipients.some((r) => r.status === 'pending')
    ) {
      envelope.delayWarningId = this.options.spool.reserveId();
      changed = true;
    }
    return changed;
  }

  /** The message has planned notifications not queued yet. */
  owes(envelope: Envelope): boolean {
    if (envelope.sender === '') return false;
    return (
      envelope.recipients.some((r) => r.dsnId !== undefined && !r.dsnSent) ||
      (envelope.delayWarningId !== undefined && !envelope.delayWarningSent)
    );
  }

  /**
   * Queue the planned notifications and mark them sent in `envelope` (in place; the caller
   * records it). Rejects with SPOOL_WRITE_FAILED when the spool cannot take one; what was
   * queued before stays marked, so a retry does not repeat it.
   */
  async send(envelope: Envelope, now: number): Promise<void> {
    if (!this.owes(envelope)) return;
    const headers = await this.originalHeaders(envelope);
    const bounces = new Map<string, RecipientState[]>();
    for (const recipient of envelope.recipients) {
      if (recipient.dsnId === undefined || recipient.dsnSent) continue;
      const group = bounces.get(recipient.dsnId) ?? [];
      group.push(recipient);
      bounces.set(recipient.dsnId, group);
    }
    for (const [id, recipients] of bounces) {
      await this.queue(id, envelope, headers, now, recipients.map((r) => dsnRecipient(r, 'failed')));
      for (const recipient of recipients) recipient.dsnSent = true;
      this.options.onQueued?.('bounce');
      this.options.logger.info(
        { queueId: envelope.id, dsnQueueId: id, to: envelope.sender, recipients: recipients.length },
        'bounce queued for the sender',
      );
    }
    if (envelope.delayWarningId !== undefined && !envelope.delayWarningSent) {
      const pending = envelope.recipients.filter((r) => r.status === 'pending');
      if (pending.length > 0) {
        await this.queue(envelope.delayWarningId, envelope, headers, now, pending.map((r) => dsnRecipient(r, 'delayed')));
        this.options.onQueued?.('delay');
        this.options.logger.info({ queueId: envelope.id, dsnQueueId: envelope.delayWarningId, to: envelope.sender }, 'delay warning queued for the sender');
      }
      envelope.delayWarningSent = true;
    }
  }

  private async queue(id: string, envelope: Envelope, originalHeaders: Buffer, now: number, recipients: DsnRecipient[]): Promise<void> {
    if (this.queuedHere.has(id)) return;
    const input = {
      reportingMta: this.options.hostname,
      queueId: envelope.id,
      arrivalDate: new Date(envelope.receivedAt),
      now: new Date(now),
      returnTo: envelope.sender,
      recipients,
      originalHeaders,
      willRetryUntil: new Date(envelope.receivedAt + this.options.maxAgeMs),
    };
    const data = buildDsn(input);
    // Returned 8-bit headers need BODY=8BITMIME, a UTF-8 address SMTPUTF8 (RFC 6152, RFC 6531).
    const transport = dsnTransport(input);
    await this.options.spool.enqueue(
      id,
      {
        sender: '',
        recipients: [envelope.sender],
        ...(transport.smtpUtf8 && { smtpUtf8: true }),
        ...(transport.eightBitMime && { bodyType: '8bitmime' as const }),
        ...eightBitMeta(data),
      },
      data,
    );
    this.queuedHere.add(id);
  }

  private async originalHeaders(envelope: Envelope): Promise<Buffer> {
    try {
      return await readHeaderBlock(this.options.spool.openMessage(envelope.id), RETURNED_HEADERS_LIMIT);
    } catch (err) {
      // The report matters more than the copy of the headers it carries.
      this.options.logger.warn({ queueId: envelope.id, err: (err as Error).message }, 'cannot read the original headers for a notification');
      return Buffer.alloc(0);
    }
  }
}

function eightBitMeta(data: Buffer): { eightBit?: 'headers' | 'body' } {
  const eightBit = eightBitPlacementOf(data);
  return eightBit === undefined ? {} : { eightBit };
}

function dsnRecipient(recipient: RecipientState, action: 'failed' | 'delayed'): DsnRecipient {
  return {
    address: recipient.address,
    action,
    reply: recipient.lastReply ?? (action === 'failed' ? 'delivery failed' : 'not delivered yet'),
    ...(recipient.remoteMta !== undefined && { remoteMta: recipient.remoteMta }),
    ...(recipient.lastAttemptAt !== undefined && { lastAttemptAt: new Date(recipient.lastAttemptAt) }),
  };
}
