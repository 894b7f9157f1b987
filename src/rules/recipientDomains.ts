import type { z } from 'zod';
import { CONTINUE, type RuleType } from '../policy/types.js';
import { domainOfAddress } from '../policy/match/addresses.js';
import { allowDenyDomainsSchema, DomainPolicy } from '../policy/match/domains.js';
import { quoted } from './shared/replyText.js';

/**
 * Which domains may receive mail through the gateway: an allow list (only these), a deny list
 * (never these; deny wins), or both. Patterns as in shared/domainList.ts.
 */

export type RecipientDomainsParams = z.output<typeof allowDenyDomainsSchema>;

const recipientDomains: RuleType<RecipientDomainsParams> = {
  type: 'recipient-domains',
  stages: ['rcpt'],
  params: allowDenyDomainsSchema,
  description: 'recipients\' domains must pass the allow and deny lists',
  create(params) {
    const policy = new DomainPolicy(params);
    return {
      evaluate(ctx) {
        const recipient = ctx.recipient;
        if (recipient === undefined) return CONTINUE;
        const domain = domainOfAddress(recipient);
        // A recipient without a domain cannot reach the rcpt stage (RFC 5321 requires one);
        // should one, it belongs to no listed domain.
        if (domain !== undefined && policy.permits(domain)) return CONTINUE;
        const shown = recipient.slice(recipient.lastIndexOf('@') + 1) || recipient;
        return { action: 'reject', code: 550, enhanced: '5.7.1', text: `mail to ${quoted(shown)} is not allowed` };
      },
    };
  },
};

export default recipientDomains;
