/**
 * When to try a message again. The configured schedule lists the waits after the 1st, 2nd,
 * ... failed attempt; past its end the last wait repeats, so the tail of the queue is
 * retried at a steady pace (as Postfix's maximal_backoff_time caps its backoff).
 */
export function nextAttemptAt(options: { attempts: number; now: number; schedule: readonly number[] }): number {
  const { attempts, now, schedule } = options;
  if (!Number.isInteger(attempts) || attempts < 1) {
    throw new RangeError(`attempts must be a whole number of at least 1, got ${attempts}`);
  }
  if (schedule.length === 0) throw new RangeError('the retry schedule must list at least one wait');
  const wait = schedule[Math.min(attempts, schedule.length) - 1]!;
  if (!Number.isFinite(wait) || wait < 0) throw new RangeError(`retry wait ${wait} is not a duration`);
  return now + wait;
}

/**
 * A message still undelivered `maxAgeMs` after it was accepted has failed (Postfix's
 * maximal_queue_lifetime; RFC 5321 section 4.5.4.1 suggests giving up after 4-5 days).
 */
export function hasExpired(options: { receivedAt: number; now: number; maxAgeMs: number }): boolean {
  return options.now - options.receivedAt >= options.maxAgeMs;
}
