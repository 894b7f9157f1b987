import type { Spool } from '../spool/spool.js';
import { outgoingSize, type Envelope, type RecipientState } from '../spool/envelope.js';
import { hasExpired, nextAttemptAt } from '../spool/retrySchedule.js';
import type { Clock } from '../util/clock.js';
import { errorMessage } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import type { DeliveryAttempt, MessageSender, RecipientResult } from './smarthostSender.js';

export interface RetryPolicy {
  /** Waits after the 1st, 2nd, ... attempt that left recipients pending; the last repeats. */
  schedule: number[];
  /** A temporary failure of a message older than this is final. */
  maxAgeMs: number;
}

export interface DeliveryQueueOptions {
  spool: Spool;
  sender: MessageSender;
  clock: Clock;
  logger: Logger;
  retry: RetryPolicy;
  /** Messages being sent at once. */
  concurrency: number;
}

export type AttemptResult = 'delivered' | 'deferred' | 'failed' | 'partial';

/** What one attempt did, after its state was recorded; for metrics and tests. */
export interface AttemptReport {
  id: string;
  result: AttemptResult;
  /** The recipients tried in this attempt and what became of each. */
  recipients: Array<RecipientResult & { expired: boolean }>;
  /** The envelope as recorded after the attempt. */
  envelope: Envelope;
  /** True once every recipient is delivered or failed and the message left the spool. */
  removed: boolean;
}

export type AttemptListener = (report: AttemptReport) => void;

/** setTimeout's upper bound (about 24.8 days); a longer wait is taken in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The delivery workers: take due messages from the spool index, at most `concurrency` at
 * once, send each to its pending recipients, record the per-recipient outcome, and sleep on
 * one timer until the next message is due.
 *
 * The spool is the single source of truth: the state of an attempt is written to disk before
 * the message can be attempted again, and a message is never in two attempts at once.
 */
export class DeliveryQueue {
  private readonly spool: Spool;
  private readonly sender: MessageSender;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly retry: RetryPolicy;
  private readonly concurrency: number;

  private readonly inFlight = new Map<string, Promise<void>>();
  /**
   * Messages whose state could not be recorded, with the time to try again. The spool index
   * still holds the state from before that attempt, so without this hold the message would
   * be due again at once and the next hop hammered while the disk is failing.
   */
  private readonly held = new Map<string, number>();
  /** Messages to attempt at the next chance regardless of their schedule (retryAll). */
  private readonly forced = new Set<string>();
  private readonly listeners = new Set<AttemptListener>();
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private unsubscribe: (() => void) | undefined;

  constructor(options: DeliveryQueueOptions) {
    if (!Number.isInteger(options.concurrency) || options.concurrency < 1) {
      throw new RangeError(`delivery concurrency must be a whole number of at least 1, got ${options.concurrency}`);
    }
    if (options.retry.schedule.length === 0) throw new RangeError('the retry schedule must list at least one wait');
    this.spool = options.spool;
    this.sender = options.sender;
    this.clock = options.clock;
    this.logger = options.logger;
    this.retry = options.retry;
    this.concurrency = options.concurrency;
  }

  /** Start delivering: whatever is due now, each new commit at once, the rest when due. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.unsubscribe = this.spool.onCommitted(() => this.pump());
    this.pump();
  }

  /**
   * Stop taking work, wait up to `timeoutMs` for the sends in flight, then close the
   * sender. A send still running after the timeout is left to finish or fail; its message
   * stays in the spool with the last recorded state, so nothing is lost, at worst sent twice.
   */
  async stop(timeoutMs: number): Promise<void> {
    this.running = false;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.clearTimer();
    if (this.inFlight.size > 0) {
      let timeout: NodeJS.Timeout | undefined;
      const expired = new Promise<'timeout'>((resolve) => {
        timeout = setTimeout(() => resolve('timeout'), Math.max(0, Math.min(timeoutMs, MAX_TIMER_MS)));
      });
      const outcome = await Promise.race([Promise.allSettled([...this.inFlight.values()]), expired]);
      clearTimeout(timeout);
      if (outcome === 'timeout') {
        this.logger.warn({ inFlight: this.inFlight.size }, 'delivery stopped with sends still in flight; they stay queued');
      }
    }
    this.sender.close();
  }

  /** Attempt every queued message now, whatever its schedule says (an operator's flush). */
  retryAll(): void {
    for (const envelope of this.spool.list()) this.forced.add(envelope.id);
    this.held.clear();
    this.pump();
  }

  /** Called after each attempt once its outcome is recorded. Returns the unsubscribe function. */
  onAttempt(listener: AttemptListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** Messages being sent right now. */
  get activeCount(): number {
    return this.inFlight.size;
  }

  /** Start what is due, as far as free slots allow, then sleep until the next due time. */
  private pump(): void {
    if (!this.running) return;
    this.clearTimer();
    const now = this.clock.now();
    let nextDue = Number.POSITIVE_INFINITY;
    const toStart: string[] = [];
    let slots = this.concurrency - this.inFlight.size;
    for (const envelope of this.spool.queued()) {
      if (this.inFlight.has(envelope.id)) continue;
      const due = this.dueAt(envelope);
      if (due > now) {
        nextDue = Math.min(nextDue, due);
        continue;
      }
      if (slots === 0) {
        // No free slot; a finishing attempt pumps again.
        nextDue = Number.POSITIVE_INFINITY;
        break;
      }
      toStart.push(envelope.id);
      slots -= 1;
    }
    // Started after the scan: beginning an attempt must not change the index mid-iteration.
    for (const id of toStart) {
      const envelope = this.spool.get(id);
      if (envelope) this.begin(envelope);
    }
    if (Number.isFinite(nextDue)) this.sleepUntil(nextDue, now);
  }

  private dueAt(envelope: Readonly<Envelope>): number {
    if (this.forced.has(envelope.id)) return Number.NEGATIVE_INFINITY;
    return Math.max(envelope.nextAttemptAt, this.held.get(envelope.id) ?? 0);
  }

  private sleepUntil(due: number, now: number): void {
    // The clock is injected, so real time and clock time may differ (a test's manual clock);
    // on waking, pump() asks the clock again and goes back to sleep if it is not time yet.
    this.timer = setTimeout(() => this.pump(), Math.min(Math.max(due - now, 0), MAX_TIMER_MS));
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private begin(envelope: Envelope): void {
    this.forced.delete(envelope.id);
    const run = this.attempt(envelope)
      .catch((err) => {
        // attempt() handles its own failures; this is the last line against a crash.
        this.logger.error({ queueId: envelope.id, err: errorMessage(err) }, 'delivery attempt failed unexpectedly');
        this.held.set(envelope.id, this.clock.now() + this.retry.schedule[0]!);
      })
      .finally(() => {
        this.inFlight.delete(envelope.id);
        this.pump();
      });
    this.inFlight.set(envelope.id, run);
  }

  private async attempt(envelope: Envelope): Promise<void> {
    const pending = envelope.recipients.filter((r) => r.status === 'pending');
    if (pending.length === 0) {
      // Settled before a crash kept it from being removed.
      await this.removeSettled(envelope);
      return;
    }

    let attempt: DeliveryAttempt;
    try {
      attempt = await this.sender.send({
        id: envelope.id,
        sender: envelope.sender,
        recipients: pending.map((r) => r.address),
        message: () => this.spool.openMessage(envelope.id),
        size: outgoingSize(envelope),
        eightBitMime: envelope.bodyType === '8bitmime',
      });
    } catch (err) {
      // A sender is not supposed to throw; treat it as a failure to reach the next hop.
      const reply = `send failed: ${errorMessage(err)}`;
      attempt = { recipients: pending.map((r) => ({ address: r.address, outcome: 'deferred', reply })) };
    }

    const now = this.clock.now();
    const expired = hasExpired({ receivedAt: envelope.receivedAt, now, maxAgeMs: this.retry.maxAgeMs });
    const updated: Envelope = { ...envelope, attempts: envelope.attempts + 1, recipients: envelope.recipients.map((r) => ({ ...r })) };
    const results: AttemptReport['recipients'] = [];
    for (const recipient of updated.recipients) {
      if (recipient.status !== 'pending') continue;
      const result = attempt.recipients.find((r) => r.address === recipient.address) ?? {
        address: recipient.address,
        outcome: 'deferred' as const,
        reply: 'no result for this recipient',
      };
      const gaveUp = result.outcome === 'deferred' && expired;
      applyResult(recipient, result, gaveUp, now);
      results.push({ ...result, outcome: gaveUp ? 'failed' : result.outcome, expired: gaveUp });
    }

    const stillPending = updated.recipients.some((r) => r.status === 'pending');
    if (stillPending) updated.nextAttemptAt = nextAttemptAt({ attempts: updated.attempts, now, schedule: this.retry.schedule });

    const report: AttemptReport = { id: envelope.id, result: summarize(results), recipients: results, envelope: updated, removed: false };
    this.logAttempt(report);

    try {
      if (stillPending) {
        await this.spool.update(updated);
      } else {
        await this.spool.remove(envelope.id);
        report.removed = true;
      }
      this.held.delete(envelope.id);
    } catch (err) {
      this.held.set(envelope.id, now + this.retry.schedule[0]!);
      this.logger.error(
        { queueId: envelope.id, err: errorMessage(err) },
        'cannot record the delivery state; the message is retried later and pending recipients may receive it twice',
      );
      return;
    }
    this.notify(report);
  }

  private async removeSettled(envelope: Envelope): Promise<void> {
    try {
      await this.spool.remove(envelope.id);
      this.held.delete(envelope.id);
      this.notify({ id: envelope.id, result: summarize([]), recipients: [], envelope, removed: true });
    } catch (err) {
      this.held.set(envelope.id, this.clock.now() + this.retry.schedule[0]!);
      this.logger.error({ queueId: envelope.id, err: errorMessage(err) }, 'cannot remove a settled message from the spool');
    }
  }

  /** One line per attempt; a failed recipient also gets its own line (bounces will follow it). */
  private logAttempt(report: AttemptReport): void {
    const { recipients } = report;
    const count = (outcome: RecipientResult['outcome']) => recipients.filter((r) => r.outcome === outcome).length;
    // The most telling reply: a refusal over a deferral over an acceptance.
    const telling =
      recipients.find((r) => r.outcome === 'failed') ?? recipients.find((r) => r.outcome === 'deferred') ?? recipients[0];
    const fields = {
      queueId: report.id,
      recipients: recipients.length,
      result: report.result,
      delivered: count('delivered'),
      deferred: count('deferred'),
      failed: count('failed'),
      attempt: report.envelope.attempts,
      reply: telling?.reply,
      ...(report.result !== 'delivered' && report.result !== 'failed' && { nextAttemptAt: new Date(report.envelope.nextAttemptAt).toISOString() }),
    };
    const level = report.result === 'delivered' ? 'info' : 'warn';
    this.logger[level](fields, 'delivery attempt');
    for (const r of recipients) {
      if (r.outcome !== 'failed') continue;
      this.logger.warn(
        { queueId: report.id, recipient: r.address, reply: r.reply, expired: r.expired },
        r.expired ? 'recipient failed: gave up after the maximum queue age' : 'recipient failed: refused by the next hop',
      );
    }
  }

  private notify(report: AttemptReport): void {
    for (const listener of this.listeners) {
      try {
        listener(report);
      } catch (err) {
        this.logger.error({ queueId: report.id, err: errorMessage(err) }, 'delivery attempt listener failed');
      }
    }
  }
}

function applyResult(recipient: RecipientState, result: RecipientResult, gaveUp: boolean, now: number): void {
  recipient.attempts += 1;
  recipient.lastAttemptAt = now;
  recipient.lastReply = gaveUp ? `${result.reply} (gave up: message exceeded the maximum queue age)` : result.reply;
  if (result.outcome === 'delivered') recipient.status = 'delivered';
  else if (result.outcome === 'failed' || gaveUp) recipient.status = 'failed';
}

function summarize(results: Array<{ outcome: RecipientResult['outcome'] }>): AttemptResult {
  if (results.length === 0) return 'delivered';
  const first = results[0]!.outcome;
  return results.every((r) => r.outcome === first) ? first : 'partial';
}
