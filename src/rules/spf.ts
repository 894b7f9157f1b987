import { isIP } from 'node:net';
import type { DNSResolver } from 'mailauth';
import { spf as checkSpf } from 'mailauth/lib/spf/index.js';
import { z } from 'zod';
import { CONTINUE, type RuleType, type Verdict } from '../policy/types.js';
import { cachingResolver } from '../dns/cachingResolver.js';
import { domainOfAddress } from '../policy/match/addresses.js';
import { quoted } from './shared/replyText.js';

/**
 * SPF preflight (RFC 7208): is each address the gateway's mail leaves from (its egress: the
 * smarthost's or the NAT's public address) authorised by the SPF record of the envelope
 * sender's domain? Receivers check exactly that, so mail they would fail is stopped here, with
 * a reason the sender's administrator can act on, instead of bouncing later or landing in spam.
 *
 * Results (RFC 7208 section 2.6) map to verdicts:
 * - pass: continue;
 * - neutral and none: the domain makes no claim about the address; `onNone` (default continue,
 *   a domain without SPF is not this rule's business unless asked);
 * - softfail: `onSoftFail` (default continue: receivers usually accept it, RFC 7208 section 8.5);
 * - fail: `onFail`, 550 5.7.23 or 450 4.7.23 ("SPF validation failed", RFC 7372 section 3.2);
 * - temperror: `onTempError`, 451 4.7.24 ("SPF validation error") or continue;
 * - permerror: the record is broken, 550 5.7.24, whatever the address.
 * The null sender <> has no domain to check (receivers then check the HELO name, which is the
 * gateway's own business, not the sender's): continue.
 */

const egressAddressSchema = z.string().refine((value) => isIP(value) !== 0, { message: 'must be an IPv4 or IPv6 address' });

const paramsSchema = z.strictObject({
  /** The public addresses mail leaves from (IPv4 and IPv6), as receivers see them. */
  egress: z.array(egressAddressSchema).min(1, { message: 'name at least one egress address' }),
  /** The name the gateway (or its smarthost) greets receivers with; only used by %{h} macros. */
  helo: z.string().min(1).optional(),
  onFail: z.enum(['reject', 'defer']).default('reject'),
  onTempError: z.enum(['defer', 'continue']).default('defer'),
  onNone: z.enum(['continue', 'reject']).default('continue'),
  onSoftFail: z.enum(['continue', 'reject']).default('continue'),
});

export type SpfParams = z.output<typeof paramsSchema>;

export { NEGATIVE_TTL_MS, POSITIVE_TTL_MS, cachingResolver } from '../dns/cachingResolver.js';

/** What receivers call the checking host when it is unknown (RFC 7208 section 7.3, %{r}). */
const CHECKING_HOST = 'unknown';

type SpfOutcome = 'pass' | 'fail' | 'softfail' | 'neutral' | 'none' | 'permerror' | 'temperror';

/** The reason mailauth gives for a permerror, without its "host: ... lookup of sender:" prefix. */
function permErrorReason(comment: string | undefined, sender: string): string {
  const prefix = `${CHECKING_HOST}: permanent error in processing during lookup of ${sender}`;
  if (comment === undefined || !comment.startsWith(prefix)) return 'it cannot be evaluated';
  return comment.slice(prefix.length).replace(/^:\s*/, '') || 'it cannot be evaluated';
}

/** The verdict for one egress address's SPF result, as the params ask. */
function verdictFor(params: SpfParams, result: SpfOutcome, about: { domain: string; ip: string; reason(): string }): Verdict {
  const domain = quoted(about.domain);
  const notAuthorised = (shown: string) =>
    `${domain} does not authorise ${about.ip} to send its mail (SPF ${shown}); ask its administrator to add it to the SPF record`;
  switch (result) {
    case 'pass':
      return CONTINUE;
    case 'neutral':
    case 'none':
      if (params.onNone === 'continue') return CONTINUE;
      return { action: 'reject', code: 550, enhanced: '5.7.23', text: notAuthorised(result) };
    case 'softfail':
      if (params.onSoftFail === 'continue') return CONTINUE;
      return { action: 'reject', code: 550, enhanced: '5.7.23', text: notAuthorised('softfail') };
    case 'fail':
      return params.onFail === 'reject'
        ? { action: 'reject', code: 550, enhanced: '5.7.23', text: notAuthorised('fail') }
        : { action: 'defer', code: 450, enhanced: '4.7.23', text: notAuthorised('fail') };
    case 'permerror':
      return { action: 'reject', code: 550, enhanced: '5.7.24', text: `the SPF record of ${domain} is broken: ${quoted(about.reason())}` };
    case 'temperror':
    default:
      // Anything mailauth cannot classify is a lookup that may work next time.
      if (params.onTempError === 'continue') return CONTINUE;
      return {
        action: 'defer',
        code: 451,
        enhanced: '4.7.24',
        text: `the SPF record of ${domain} could not be checked (DNS lookup failed); try again later`,
      };
  }
}

const spf: RuleType<SpfParams> = {
  type: 'spf',
  stages: ['mail'],
  params: paramsSchema,
  description: "the gateway's egress addresses must be authorised by the sender domain's SPF record",
  create(params, deps) {
    // The gateway's resolver already caches for each answer's TTL and passes through unchanged;
    // a resolver without a cache (a rule tested alone, `policy test`) gets a fixed-TTL one here.
    // DnsResolver is mailauth's resolver shape with `unknown` records; the records pass through as given.
    const resolver = cachingResolver(deps.resolver, deps.clock) as DNSResolver;

    async function outcomeFor(sender: string, ip: string): Promise<{ result: SpfOutcome; comment?: string }> {
      const response = await checkSpf({ sender, ip, helo: params.helo, mta: CHECKING_HOST, resolver });
      return { result: response.status.result as SpfOutcome, comment: response.status.comment };
    }

    return {
      async evaluate(ctx) {
        const sender = ctx.envelope.sender;
        if (sender === undefined || sender === '') return CONTINUE;
        const domain = domainOfAddress(sender);
        if (domain === undefined) return CONTINUE;
        // mailauth accepts only ASCII domains: hand it the xn-- form, lower-cased.
        const asciiSender = `${sender.slice(0, sender.lastIndexOf('@'))}@${domain}`;

        // One address after the other: the first fills the cache the others then read.
        for (const ip of params.egress) {
          const { result, comment } = await outcomeFor(asciiSender, ip);
          const verdict = verdictFor(params, result, { domain, ip, reason: () => permErrorReason(comment, asciiSender) });
          if (verdict.action !== 'continue') {
            deps.logger.info({ domain, egress: ip, result }, 'SPF preflight refused the sender domain');
            return verdict;
          }
        }
        return CONTINUE;
      },
    };
  },
};

export default spf;
