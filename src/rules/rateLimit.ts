import { domainToASCII } from 'node:url';
import { z } from 'zod';
import { parseDuration } from '../util/units.js';
import { MAX_WINDOW_MS } from '../policy/limiterStore.js';
import { CONTINUE, type PolicyContext, type RuleType, type Stage, type Verdict } from '../policy/types.js';

/**
 * `rate-limit`: counts messages, recipients or bytes per key (the user, the client IP, the
 * sender's domain, the recipient's domain, or a combination) over one or more windows, e.g.
 * 100 a minute and 2000 a day, and defers with 450 4.7.1 (RFC 3463: "delivery not
 * authorized", temporary) once any window is past its limit. A deferral is what a submitting
 * client handles well: it keeps the message and tries again later, as RFC 5321 section
 * 4.2.5 expects of a 4yz reply.
 *
 * What is counted, by stage (the first, data, is the default):
 * - data: the message once complete, so a transaction the client abandons, or that another
 *   rule refuses earlier, is not counted. `messages` counts 1, `recipients` its recipients,
 *   `bytes` its size. Keyed by recipient domain, each domain among the recipients counts
 *   on its own: 1 message, its own recipients, or the whole size.
 * - rcpt: each RCPT TO as it arrives. `recipients` counts 1; `messages` counts 1 at the first
 *   recipient (keyed by recipient domain: at the first recipient of each domain).
 * - mail: each MAIL FROM, `messages` only, and not keyed by recipient domain (there is none
 *   yet). `bytes` is counted only at data, where the size is known rather than declared.
 *
 * Every attempt counts in every window, refused or not, as Postfix's anvil and ZoneMTA count:
 * each window is one atomic increment in the store, with no check-then-count race between
 * replicas sharing Redis, and a client that keeps retrying before the window ends keeps the
 * window full instead of being let through by its own retries. The price is that a refused
 * attempt uses up allowance in the longer windows too.
 *
 * When a key cannot be made (no authenticated user, no sender yet) the rule has nothing to
 * count against and answers continue.
 */

const KEY_PARTS = ['user', 'client-ip', 'sender-domain', 'recipient-domain'] as const;
type KeyPart = (typeof KEY_PARTS)[number];

const limitSchema = z
  .strictObject({
    max: z.number().int().positive(),
    per: z.string(),
  })
  .transform(({ max, per }, ctx) => {
    let windowMs: number;
    try {
      windowMs = parseDuration(per);
    } catch (err) {
      ctx.addIssue({ code: 'custom', path: ['per'], message: (err as Error).message });
      return z.NEVER;
    }
    // Counters keep whole seconds (rate-limiter-flexible), and the memory store's timers no
    // more than about 24.8 days.
    if (windowMs < 1000 || windowMs % 1000 !== 0 || windowMs > MAX_WINDOW_MS) {
      ctx.addIssue({ code: 'custom', path: ['per'], message: `"${per}" must be a whole number of seconds from 1s to 24d` });
      return z.NEVER;
    }
    return { max, per, windowMs };
  });

export const rateLimitParams = z.strictObject({
  count: z.enum(['messages', 'recipients', 'bytes']).default('messages'),
  key: z
    .array(z.enum(KEY_PARTS))
    .min(1)
    .default(['user'])
    .refine((parts) => new Set(parts).size === parts.length, 'lists a key part twice'),
  limits: z
    .array(limitSchema)
    .min(1)
    // Two limits over one window would share one counter and count every attempt twice.
    .refine((limits) => new Set(limits.map((limit) => limit.windowMs)).size === limits.length, 'has two limits over the same window'),
});

export type RateLimitParams = z.output<typeof rateLimitParams>;

/** One counter to add to: the key's text and how many points this stage adds. */
interface Count {
  key: string;
  points: number;
}

const rateLimit: RuleType<RateLimitParams> = {
  type: 'rate-limit',
  stages: ['data', 'mail', 'rcpt'],
  params: rateLimitParams,
  description: 'Counts messages, recipients or bytes per user, client IP, sender or recipient domain over one or more windows; 450 4.7.1 past a limit',
  create(params, deps, instance) {
    const name = instance?.name;
    if (instance?.stage) {
      const problem = stageProblem(params, instance.stage);
      if (problem) throw new Error(`Rate limit '${name}': ${problem}`);
    }
    // The instance name keeps two rules' counters apart even when they count the same key.
    const prefix = `${name ?? 'rate-limit'}|${params.count}`;

    return {
      async evaluate(ctx: PolicyContext): Promise<Verdict> {
        const problem = stageProblem(params, ctx.stage);
        // A misconfiguration, not a policy outcome: a fault the engine reports and counts.
        if (problem) throw new Error(`Rate limit '${name ?? 'rate-limit'}': ${problem}`);

        const counts = measure(params, ctx).filter((count) => count.points > 0);
        const results = await Promise.all(
          counts.flatMap((count) =>
            params.limits.map(async (limit) => ({
              count,
              limit,
              ...(await deps.limiter.consume(`${prefix}|${count.key}`, count.points, limit.max, limit.windowMs)),
            })),
          ),
        );
        const refused = results.filter((result) => !result.allowed);
        if (refused.length === 0) return CONTINUE;

        // The client may try again once every window it is past has ended.
        const resetAt = Math.max(...refused.map((result) => result.resetAt));
        deps.logger.debug(
          { rule: name, keys: refused.map((result) => result.count.key), windows: refused.map((result) => result.limit.per) },
          'rate limit reached',
        );
        const label = name === undefined ? 'rate limit' : `rate limit '${printable(name)}'`;
        return {
          action: 'defer',
          code: 450,
          enhanced: '4.7.1',
          text: `${label} reached, retry after ${retryTime(resetAt, deps.clock.now())}`,
          annotations: { tags: ['rate-limited'] },
        };
      },
    };
  },
};

export default rateLimit;

/** Why these params cannot count at `stage`, or undefined when they can. */
function stageProblem(params: RateLimitParams, stage: Stage): string | undefined {
  if (stage === 'data' || (stage === 'rcpt' && params.count !== 'bytes')) return undefined;
  if (stage === 'rcpt') return 'counts bytes, which are known only at the data stage';
  if (stage !== 'mail') return `cannot run at the ${stage} stage; it runs at mail, rcpt or data`;
  if (params.count !== 'messages') return `counts ${params.count}, which are known only at ${params.count === 'bytes' ? 'the data stage' : 'the rcpt or data stage'}`;
  if (params.key.includes('recipient-domain')) return 'is keyed by recipient domain, which is known only from the rcpt stage on';
  return undefined;
}

/** The counters this stage adds to; none when part of the key is not known. */
function measure(params: RateLimitParams, ctx: PolicyContext): Count[] {
  const fixed: string[] = [];
  for (const part of params.key) {
    if (part === 'recipient-domain') continue;
    const value = keyValue(part, ctx);
    if (value === undefined) return [];
    fixed.push(`${part}=${encodeURIComponent(value)}`);
  }
  const keyFor = (recipientDomain?: string): string =>
    recipientDomain === undefined ? fixed.join(',') : [...fixed, `recipient-domain=${encodeURIComponent(recipientDomain)}`].join(',');
  const byDomain = params.key.includes('recipient-domain');
  const { recipients } = ctx.envelope;

  if (ctx.stage === 'rcpt') {
    if (ctx.recipient === undefined) return [];
    const domain = addressDomain(ctx.recipient);
    if (params.count === 'recipients') return [{ key: keyFor(byDomain ? domain : undefined), points: 1 }];
    // messages: once per transaction (or per recipient domain in it), at its first recipient.
    const first = byDomain ? !recipients.some((address) => addressDomain(address) === domain) : recipients.length === 0;
    return [{ key: keyFor(byDomain ? domain : undefined), points: first ? 1 : 0 }];
  }

  const perMessage = (recipientCount: number): number =>
    params.count === 'messages' ? 1 : params.count === 'recipients' ? recipientCount : (ctx.message?.size ?? 0);
  if (!byDomain || ctx.stage === 'mail') return [{ key: keyFor(), points: perMessage(recipients.length) }];

  const perDomain = new Map<string, number>();
  for (const address of recipients) {
    const domain = addressDomain(address);
    perDomain.set(domain, (perDomain.get(domain) ?? 0) + 1);
  }
  return [...perDomain].map(([domain, recipientCount]) => ({ key: keyFor(domain), points: perMessage(recipientCount) }));
}

function keyValue(part: Exclude<KeyPart, 'recipient-domain'>, ctx: PolicyContext): string | undefined {
  switch (part) {
    case 'user':
      return ctx.user?.name;
    case 'client-ip':
      return clientIp(ctx.client.address);
    case 'sender-domain': {
      const sender = ctx.envelope.sender;
      if (sender === undefined) return undefined;
      // The null sender (RFC 5321 section 4.5.5) has no domain; its messages count together.
      return sender === '' ? '<>' : addressDomain(sender);
    }
  }
}

/** IPv4 clients reach a dual-stack listener as ::ffff:a.b.c.d; count them under one key either way. */
function clientIp(address: string): string {
  const lowered = address.toLowerCase();
  return lowered.startsWith('::ffff:') && lowered.includes('.') ? lowered.slice(7) : lowered;
}

/**
 * The domain of an address in one spelling: domains are case-insensitive (RFC 5321 section
 * 2.4) and an IDN counts the same in Unicode and in its xn-- form (RFC 5890).
 */
function addressDomain(address: string): string {
  const domain = address.slice(address.lastIndexOf('@') + 1).toLowerCase();
  return domainToASCII(domain) || domain;
}

/**
 * When the client may retry, in UTC: "12:05Z" within a day, "2026-01-03 12:05Z" beyond.
 * Rounded up to the minute, so retrying at the time named is never too early.
 */
function retryTime(resetAt: number, now: number): string {
  const minute = Math.ceil(resetAt / 60_000) * 60_000;
  const iso = new Date(minute).toISOString();
  const time = `${iso.slice(11, 16)}Z`;
  return minute - now > 86_400_000 ? `${iso.slice(0, 10)} ${time}` : time;
}

/** A reply text is one line (RFC 5321 section 4.2): no control characters from a name. */
function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f]/g, ' ');
}
