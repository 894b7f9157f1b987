/**
 * When to try a message again. The configured schedule lists the waits after the 1st, 2nd,
 * ... failed attempt; past its end the last wait repeats, so the tail of the queue is
 * retried at a steady pace (as Postfix's maximal_backoff_time caps its backoff).
 *
 * `jitter` spreads each wait by up to that fraction either way (0.1: 90% to 110%), so the
 * messages deferred together by one outage of a next hop do not all come back in the same
 * second when it returns. `random` gives [0, 1); with it fixed the result is a pure function.
 */
export function nextAttemptAt(options: {
  attempts: number;
  now: number;
  schedule: readonly number[];
  jitter?: number;
  random?: () => number;
}): number {
  const { attempts, now, schedule, jitter = 0, random = Math.random } = options;
  if (!Number.isInteger(attempts) || attempts < 1) {
    throw new RangeError(`attempts must be a whole number of at least 1, got ${attempts}`);
  }
  if (schedule.length === 0) throw new RangeError('the retry schedule must list at least one wait');
  if (!(jitter >= 0 && jitter < 1)) throw new RangeError(`retry jitter must be at least 0 and below 1, got ${jitter}`);
  const wait = schedule[Math.min(attempts, schedule.length) - 1]!;
  if (!Number.isFinite(wait) || wait < 0) throw new RangeError(`retry wait ${wait} is not a duration`);
  const spread = jitter === 0 ? 1 : 1 + jitter * (2 * random() - 1);
  return now + Math.round(wait * spread);
}

/**
 * A message still undelivered `maxAgeMs` after it was accepted has failed (Postfix's
 * maximal_queue_lifetime; RFC 5321 section 4.5.4.1 suggests giving up after 4-5 days).
 */
export function hasExpired(options: { receivedAt: number; now: number; maxAgeMs: number }): boolean {
  return options.now - options.receivedAt >= options.maxAgeMs;
}
