import { z } from 'zod';
import { isSenderAllowed, senderPatternProblem } from '../../auth/senderPattern.js';
import { asciiDomain } from './addresses.js';

/**
 * Allow and deny lists of domains, as written in rule params:
 *
 * - `example.com`    exactly that domain,
 * - `*.example.com`  any subdomain of example.com, not example.com itself (as `*@*.domain` in
 *                    src/auth/senderPattern.ts; list both to cover both),
 * - `*`              any domain.
 *
 * Entries may be written in Unicode or xn-- form and in any case; they are kept in ASCII.
 */

type DomainPattern = { kind: 'any' } | { kind: 'pattern'; senderPattern: string };

/**
 * The pattern in canonical form, or a reason why it is not one. `example.com` and
 * `*.example.com` read exactly as `*@example.com` and `*@*.example.com` do in a user's senders,
 * so both are checked and matched by src/auth/senderPattern.ts.
 */
function parseDomainPattern(entry: string): DomainPattern | string {
  const text = entry.trim();
  if (text === '*') return { kind: 'any' };
  const wildcard = text.startsWith('*.');
  const bare = wildcard ? text.slice(2) : text;
  const domain = bare.includes('@') ? '' : asciiDomain(bare);
  const senderPattern = `*@${wildcard ? '*.' : ''}${domain}`;
  if (domain === '' || senderPatternProblem(senderPattern) !== undefined) {
    return domain.includes('*')
      ? `"${entry}": a wildcard must be the whole first label (*.example.com) or the whole entry (*)`
      : `"${entry}" is not a domain`;
  }
  return { kind: 'pattern', senderPattern };
}

/** Why `entry` is not a domain pattern, or undefined when it is (for load errors). */
export function domainPatternProblem(entry: string): string | undefined {
  const pattern = parseDomainPattern(entry);
  return typeof pattern === 'string' ? pattern : undefined;
}

/** A list of domain patterns; `matches` takes a domain already in ASCII form (see addresses.ts). */
export class DomainList {
  private readonly any: boolean;
  private readonly senderPatterns: readonly string[];

  constructor(entries: readonly string[]) {
    const patterns = entries.map((entry) => {
      const pattern = parseDomainPattern(entry);
      if (typeof pattern === 'string') throw new RangeError(pattern);
      return pattern;
    });
    this.any = patterns.some((pattern) => pattern.kind === 'any');
    this.senderPatterns = patterns.flatMap((pattern) => (pattern.kind === 'pattern' ? [pattern.senderPattern] : []));
  }

  matches(domain: string): boolean {
    // A placeholder local part turns the domain into an address the sender patterns can judge.
    return this.any || isSenderAllowed(this.senderPatterns, `x@${domain}`);
  }
}

/** A params field holding a list of domain patterns, checked when the policy loads. */
export const domainListSchema = z.array(z.string()).superRefine((entries, ctx) => {
  entries.forEach((entry, index) => {
    const pattern = parseDomainPattern(entry);
    if (typeof pattern === 'string') ctx.addIssue({ code: 'custom', path: [index], message: pattern });
  });
});

/** The allow/deny pair shared by recipient-domains and sender-domains. */
export const allowDenyDomainsSchema = z
  .strictObject({
    /** When given, only these domains pass. */
    allow: domainListSchema.optional(),
    /** These never pass; a deny entry wins over an allow entry. */
    deny: domainListSchema.optional(),
  })
  .refine((params) => params.allow !== undefined || params.deny !== undefined, {
    message: 'give an allow list, a deny list or both',
  });

/** Whether a domain passes: not denied, and allowed when there is an allow list. */
export class DomainPolicy {
  private readonly allow: DomainList | undefined;
  private readonly deny: DomainList;

  constructor(params: { allow?: readonly string[] | undefined; deny?: readonly string[] | undefined }) {
    this.allow = params.allow === undefined ? undefined : new DomainList(params.allow);
    this.deny = new DomainList(params.deny ?? []);
  }

  permits(domain: string): boolean {
    if (this.deny.matches(domain)) return false;
    return this.allow === undefined || this.allow.matches(domain);
  }
}
