import type { Spool } from '../spool/spool.js';
import { copyEnvelope, outgoingSize, type Envelope, type RecipientState } from '../spool/envelope.js';
import { hasExpired, nextAttemptAt } from '../spool/retrySchedule.js';
import type { Clock } from '../util/clock.js';
import { errorMessage } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { DueQueue } from './dueQueue.js';
import { RETURNED_BY_OPERATOR, type QueueControl } from './queueControl.js';
import type { SenderNotifier } from './senderNotifier.js';
import { transferNeeds } from './smtpExtensions.js';
import { boundedReply } from './replyClassifier.js';
import type { DeliveryAttempt, MessageSender, OutgoingMessage, RecipientResult } from './smarthostSender.js';

export interface RetryPolicy {
  /** Waits after the 1st, 2nd, ... attempt that left recipients pending; the last repeats. */
  schedule: number[];
  /** A temporary failure of a message older than this is final. */
  maxAgeMs: number;
  /** Each wait varies by up to this fraction either way (see nextAttemptAt). */
  jitter?: number;
}

/** One SMTP transaction of an attempt: some of the recipients, and how to reach their next hop. */
export interface Transaction {
  recipients: string[];
  send(message: OutgoingMessage): Promise<DeliveryAttempt>;
}

/** Splits the pending recipients of a message into transactions (routing). */
export interface Transport {
  plan(recipients: string[]): Transaction[];
  close(): void;
}

export interface DeliveryQueueOptions {
  spool: Spool;
  /** Routing and next hops; or `sender` for one next hop taking every recipient. */
  transport?: Transport;
  sender?: MessageSender;
  /** Bounces and delay warnings; without one, failures are only logged. */
  notifier?: SenderNotifier;
  clock: Clock;
  logger: Logger;
  retry: RetryPolicy;
  /** Messages being sent at once. */
  concurrency: number;
  /** [0,1) randomness for the retry jitter. */
  random?: () => number;
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
 * The delivery workers: take due messages from the spool, at most `concurrency` at once, send
 * each to its pending recipients (one transaction per next hop), record the per-recipient
 * outcome, tell the sender what failed, and sleep on one timer until the next message is due.
 *
 * The spool is the single source of truth: the state of each transaction is written to disk
 * before the message can be attempted again, and a message is never in two attempts at once.
 * A message with several transactions records each as it ends, so a crash repeats at most
 * the transaction that was running.
 */
export class DeliveryQueue implements QueueControl {
  private readonly spool: Spool;
  private readonly transport: Transport;
  private readonly notifier: SenderNotifier | undefined;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly retryPolicy: RetryPolicy;
  private readonly concurrency: number;
  private readonly random: () => number;

  private readonly due = new DueQueue();
  private readonly inFlight = new Map<string, Promise<void>>();
  /** Messages an operator's command is working on; no attempt starts meanwhile. */
  private readonly locked = new Set<string>();
  /** In flight when an operator asked for a retry: due at once when the attempt ends. */
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
    const transport = options.transport ?? (options.sender && singleHop(options.sender));
    if (!transport) throw new TypeError('a delivery queue needs a transport or a sender');
    this.spool = options.spool;
    this.transport = transport;
    this.notifier = options.notifier;
    this.clock = options.clock;
    this.logger = options.logger;
    this.retryPolicy = options.retry;
    this.concurrency = options.concurrency;
    this.random = options.random ?? Math.random;
  }

  /** Start delivering: whatever is due now, each new commit at once, the rest when due. */
  start(): void {
    if (this.running) return;
    this.running = true;
    const unrecorded = this.notifier ? this.notifier.queuedButUnrecorded(this.spool) : [];
    const held = new Set(unrecorded.flatMap((fix) => fix.noticeIds));
    for (const envelope of this.spool.queued()) {
      if (!held.has(envelope.id)) this.due.schedule(envelope.id, envelope.nextAttemptAt);
    }
    if (unrecorded.length > 0) void this.recordQueuedNotices(unrecorded);
    this.unsubscribe = this.spool.onCommitted((envelope) => {
      this.due.schedule(envelope.id, envelope.nextAttemptAt);
      this.pump();
    });
    this.pump();
  }

  /**
   * Stop taking work, wait up to `timeoutMs` for the sends in flight, then close the
   * transport. A send still running after the timeout is left to finish or fail; its message
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
    this.transport.close();
  }

  /**
   * A crash between queuing a notification and recording that in its message's envelope
   * leaves both in the spool. The notification is held back until the record is written:
   * delivered and gone first, it would look unsent and be queued a second time.
   */
  private async recordQueuedNotices(fixes: ReadonlyArray<{ envelope: Envelope; noticeIds: string[] }>): Promise<void> {
    for (const { envelope, noticeIds } of fixes) {
      try {
        await this.spool.update(envelope);
      } catch (err) {
        this.logger.error({ queueId: envelope.id, err: errorMessage(err) }, 'cannot record a notification queued before the restart; it may be sent twice');
      }
      for (const id of noticeIds) {
        const notice = this.spool.get(id);
        if (notice) this.due.schedule(id, notice.nextAttemptAt);
      }
    }
    this.pump();
  }

  /** Attempt every queued message now, whatever its schedule says (an operator's flush). */
  retryAll(): void {
    void this.retryNow();
  }

  list(): Envelope[] {
    return this.spool.list();
  }

  get(id: string): Envelope | undefined {
    return this.spool.get(id);
  }

  async retry(id?: string): Promise<number> {
    return this.retryNow(id);
  }

  async delete(id: string): Promise<boolean> {
    return this.whileLocked(id, async () => {
      if (!this.spool.has(id)) return false;
      await this.spool.remove(id);
      this.due.remove(id);
      this.logger.info({ queueId: id }, 'message deleted from the queue by the operator');
      return true;
    });
  }

  async bounce(id: string): Promise<boolean> {
    const found = await this.whileLocked(id, async () => {
      const envelope = this.spool.get(id);
      if (!envelope) return false;
      const now = this.clock.now();
      for (const recipient of envelope.recipients) {
        if (recipient.status !== 'pending') continue;
        recipient.status = 'failed';
        recipient.lastReply = RETURNED_BY_OPERATOR;
        recipient.lastAttemptAt = now;
      }
      this.notifier?.plan(envelope, now);
      envelope.nextAttemptAt = now;
      await this.spool.update(envelope);
      this.logger.info({ queueId: id }, 'message returned to the sender by the operator');
      return true;
    });
    // The attempt that follows finds nothing pending: it queues the bounce and removes the message.
    if (found) this.retryNow(id);
    return found;
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

  private retryNow(id?: string): number {
    const ids = id === undefined ? this.spool.list().map((e) => e.id) : this.spool.has(id) ? [id] : [];
    for (const each of ids) {
      if (this.inFlight.has(each)) this.forced.add(each);
      else this.due.schedule(each, 0);
    }
    this.pump();
    return ids.length;
  }

  /** Run an operator's change with no attempt of the message in flight or starting. */
  private async whileLocked<T>(id: string, task: () => Promise<T>): Promise<T> {
    while (this.locked.has(id)) await new Promise((resolve) => setTimeout(resolve, 10));
    this.locked.add(id);
    try {
      await this.inFlight.get(id);
      return await task();
    } finally {
      this.locked.delete(id);
      const envelope = this.spool.get(id);
      if (envelope && !this.due.has(id)) this.due.schedule(id, envelope.nextAttemptAt);
      this.pump();
    }
  }

  /** Start what is due, as far as free slots allow, then sleep until the next due time. */
  private pump(): void {
    if (!this.running) return;
    this.clearTimer();
    const now = this.clock.now();
    while (this.inFlight.size < this.concurrency) {
      const id = this.due.takeDue(now);
      if (id === undefined) break;
      // A locked message is rescheduled when its operator's command ends; one in flight
      // when its attempt ends (at once, since it was due again already).
      if (this.locked.has(id)) continue;
      if (this.inFlight.has(id)) {
        this.forced.add(id);
        continue;
      }
      const envelope = this.spool.get(id);
      if (envelope) this.begin(envelope);
    }
    if (this.inFlight.size >= this.concurrency) return; // a finishing attempt pumps again
    const next = this.due.peekDue();
    if (next !== undefined) this.sleepUntil(next, now);
  }

  private sleepUntil(due: number, now: number): void {
    // The clock is injected, so real time and clock time may differ (a test's manual clock);
    // on waking, pump() asks the clock again and goes back to sleep if it is not time yet.
    this.timer = setTimeout(() => this.pump(), Math.min(Math.max(due - now, 0), MAX_TIMER_MS));
    // The listeners keep the process alive; a queue waiting for its next message must not.
    this.timer.unref();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private begin(envelope: Envelope): void {
    const { id } = envelope;
    let nextDue: number | undefined;
    const run = this.attempt(envelope)
      .then((due) => {
        nextDue = due;
      })
      .catch((err) => {
        // attempt() handles its own failures; this is the last line against a crash.
        this.logger.error({ queueId: id, err: errorMessage(err) }, 'delivery attempt failed unexpectedly');
        nextDue = this.clock.now() + this.retryPolicy.schedule[0]!;
      })
      .finally(() => {
        // Rescheduled only once it is out of inFlight: a pump() in between would otherwise
        // take the entry, find the message still in flight, and drop it for good.
        this.inFlight.delete(id);
        const forced = this.forced.delete(id);
        if (nextDue !== undefined) this.due.schedule(id, forced ? 0 : nextDue);
        this.pump();
      });
    this.inFlight.set(id, run);
  }

  /** One attempt; resolves with when the message is due next, or undefined once it left the queue. */
  private async attempt(envelope: Envelope): Promise<number | undefined> {
    const state = copyEnvelope(envelope);
    const results: AttemptReport['recipients'] = [];
    const pending = state.recipients.filter((r) => r.status === 'pending');
    if (pending.length > 0) {
      state.attempts += 1;
      const transactions = this.transport.plan(pending.map((r) => r.address));
      await Promise.all(
        transactions.map(async (transaction) => {
          const attempt = await this.send(state, transaction);
          const now = this.clock.now();
          const expired = hasExpired({ receivedAt: state.receivedAt, now, maxAgeMs: this.retryPolicy.maxAgeMs });
          for (const address of transaction.recipients) {
            const recipient = state.recipients.find((r) => r.status === 'pending' && r.address === address);
            if (!recipient) continue;
            const result = attempt.recipients.find((r) => r.address === address) ?? {
              address,
              outcome: 'deferred' as const,
              reply: 'no result for this recipient',
            };
            const gaveUp = result.outcome === 'deferred' && expired;
            applyResult(recipient, result, gaveUp, now);
            results.push({ ...result, outcome: gaveUp ? 'failed' : result.outcome, expired: gaveUp });
          }
          // With several transactions, each is recorded as it ends: a crash now must not send
          // this one's recipients again because another is still running.
          if (transactions.length > 1) await this.recordProgress(state);
        }),
      );
    }

    const now = this.clock.now();
    const stillPending = state.recipients.some((r) => r.status === 'pending');
    if (stillPending && pending.length > 0) {
      state.nextAttemptAt = nextAttemptAt({
        attempts: state.attempts,
        now,
        schedule: this.retryPolicy.schedule,
        jitter: this.retryPolicy.jitter ?? 0,
        random: this.random,
      });
    }
    this.notifier?.plan(state, now);
    const report: AttemptReport = { id: state.id, result: summarize(results), recipients: results, envelope: state, removed: false };
    if (results.length > 0) this.logAttempt(report);

    try {
      const owes = this.notifier?.owes(state) ?? false;
      if (stillPending || owes) await this.spool.update(state);
      if (owes) {
        await this.notifier!.send(state, now);
        if (stillPending) await this.spool.update(state);
      }
      if (!stillPending) {
        await this.spool.remove(state.id);
        report.removed = true;
      }
      if (owes) this.notifier!.recorded(state);
    } catch (err) {
      this.logger.error(
        { queueId: state.id, err: errorMessage(err) },
        'cannot record the delivery state; the message is retried later and pending recipients may receive it twice',
      );
      return now + this.retryPolicy.schedule[0]!;
    }
    this.notify(report);
    return report.removed ? undefined : state.nextAttemptAt;
  }

  private async send(envelope: Envelope, transaction: Transaction): Promise<DeliveryAttempt> {
    const attempt = await this.sendUnbounded(envelope, transaction);
    return { recipients: attempt.recipients.map((result) => ({ ...result, reply: boundedReply(result.reply) })) };
  }

  private async sendUnbounded(envelope: Envelope, transaction: Transaction): Promise<DeliveryAttempt> {
    try {
      return await transaction.send({
        id: envelope.id,
        sender: envelope.sender,
        recipients: transaction.recipients,
        message: () => this.spool.openMessage(envelope.id),
        size: outgoingSize(envelope),
        // Announced whenever the content is 8-bit, also for a client that sent it without BODY=8BITMIME.
        eightBitMime: envelope.bodyType === '8bitmime' || envelope.eightBit !== undefined,
        needs: transferNeeds(envelope),
      });
    } catch (err) {
      // A sender is not supposed to throw; treat it as a failure to reach the next hop.
      const reply = `send failed: ${errorMessage(err)}`;
      return { recipients: transaction.recipients.map((address) => ({ address, outcome: 'deferred', reply })) };
    }
  }

  private async recordProgress(state: Envelope): Promise<void> {
    try {
      await this.spool.update(copyEnvelope(state));
    } catch (err) {
      // The final record of the attempt tries again; only the crash window grows.
      this.logger.warn({ queueId: state.id, err: errorMessage(err) }, 'cannot record a finished transaction yet');
    }
  }

  /** One line per attempt; a failed recipient also gets its own line. */
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
      ...(telling?.remoteMta !== undefined && { remoteMta: telling.remoteMta }),
      ...(report.result !== 'delivered' && report.result !== 'failed' && { nextAttemptAt: new Date(report.envelope.nextAttemptAt).toISOString() }),
    };
    const level = report.result === 'delivered' ? 'info' : 'warn';
    this.logger[level](fields, 'delivery attempt');
    for (const r of recipients) {
      if (r.outcome !== 'failed') continue;
      this.logger.warn(
        { queueId: report.id, recipient: r.address, reply: r.reply, expired: r.expired, bounce: report.envelope.sender !== '' },
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

/** Every recipient to the one next hop. */
function singleHop(sender: MessageSender): Transport {
  return {
    plan: (recipients) => [{ recipients, send: (message) => sender.send(message) }],
    close: () => sender.close(),
  };
}

function applyResult(recipient: RecipientState, result: RecipientResult, gaveUp: boolean, now: number): void {
  recipient.attempts += 1;
  recipient.lastAttemptAt = now;
  recipient.lastReply = gaveUp ? `${result.reply} (gave up: message exceeded the maximum queue age)` : result.reply;
  if (result.remoteMta !== undefined) recipient.remoteMta = result.remoteMta;
  else delete recipient.remoteMta;
  if (result.outcome === 'delivered') recipient.status = 'delivered';
  else if (result.outcome === 'failed' || gaveUp) recipient.status = 'failed';
}

function summarize(results: Array<{ outcome: RecipientResult['outcome'] }>): AttemptResult {
  if (results.length === 0) return 'delivered';
  const first = results[0]!.outcome;
  return results.every((r) => r.outcome === first) ? first : 'partial';
}
