import type { PolicyContext, RuleDeps, LimiterStore, Stage } from '../../../src/policy/types.js';
import rateLimit, { rateLimitParams, type RateLimitParams } from '../../../src/rules/rateLimit.js';
import { createLimiterStore } from '../../../src/policy/limiterStore.js';
import { ManualClock } from '../../../src/util/clock.js';
import { silentLogger } from '../../../src/util/logger.js';

/** A context at `stage` for alice on 192.0.2.1, sending as alice@example.com; `fields` override. */
export function context(stage: Stage, fields: Partial<Omit<PolicyContext, 'stage'>> = {}): PolicyContext {
  return {
    stage,
    sessionId: 'session-1',
    client: { address: '192.0.2.1', port: 50000 },
    listener: 'submission',
    user: { name: 'alice', senders: ['alice@example.com'], groups: [] },
    envelope: { sender: 'alice@example.com', recipients: [] },
    deadline: Number.MAX_SAFE_INTEGER,
    ...fields,
  };
}

/** The message at the data stage, `size` bytes long. */
export function message(size: number): PolicyContext['message'] {
  return {
    headers: [],
    size,
    open: () => {
      throw new Error('the rate limit does not read the message');
    },
  };
}

/** Params as written in a policy file, validated by the rule type's own schema. */
export function params(input: unknown): RateLimitParams {
  const parsed = rateLimitParams.safeParse(input);
  if (!parsed.success) throw new Error(JSON.stringify(parsed.error.issues));
  return parsed.data;
}

/** A rate-limit rule named `name` over a real memory store (or `limiter`). */
export function rule(input: unknown, options: { name?: string; stage?: Stage; limiter?: LimiterStore; clock?: ManualClock } = {}) {
  const deps: RuleDeps = {
    clock: options.clock ?? new ManualClock(),
    logger: silentLogger(),
    resolver: async () => {
      throw new Error('the rate limit does not resolve names');
    },
    limiter: options.limiter ?? createLimiterStore({ store: 'memory' }),
  };
  return rateLimit.create(params(input), deps, { name: options.name ?? 'test-limit', stage: options.stage });
}
