import type { Envelope } from '../spool/envelope.js';

/**
 * What an operator may do to the queue (`postern queue ...`). A running gateway implements it
 * in its delivery queue, which knows which messages are being sent; with no gateway running,
 * the same operations work on the spool directly (OfflineQueueControl).
 *
 * No operation races a delivery attempt: an operation on a message being sent waits for that
 * attempt to be recorded, and no attempt of it starts while the operation runs.
 */
export interface QueueControl {
  /** Every queued message, oldest first. */
  list(): Envelope[];
  get(id: string): Envelope | undefined;
  /** Attempt now, whatever the retry schedule says; every message without an ID. Resolves with how many matched. */
  retry(id?: string): Promise<number>;
  /** Take a message out of the queue without telling the sender (Postfix's postsuper -d). False if no such message. */
  delete(id: string): Promise<boolean>;
  /**
   * Give up on every pending recipient now: they are recorded as failed and the sender gets a
   * delivery status notification, as when a message expires. False if no such message.
   */
  bounce(id: string): Promise<boolean>;
}

/** The reply recorded for recipients given up by `postern queue bounce`. */
export const RETURNED_BY_OPERATOR = 'returned to the sender by the postmaster';
