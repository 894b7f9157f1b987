import type { z } from 'zod';
import { CONTINUE, type RuleType } from '../policy/types.js';
import { domainOfAddress } from '../policy/match/addresses.js';
import { allowDenyDomainsSchema, DomainPolicy } from '../policy/match/domains.js';
import { quoted } from './shared/replyText.js';

/**
 * Which domains may appear as the envelope sender: an allow list (only these), a deny list
 * (never these; deny wins), or both. Patterns as in shared/domainList.ts.
 *
 * The null sender <> has no domain and is left alone here: whether a user may send with it
 * is sender-identity's `allowNullSender`.
 */

export type SenderDomainsParams = z.output<typeof allowDenyDomainsSchema>;

const senderDomains: RuleType<SenderDomainsParams> = {
  type: 'sender-domains',
  stages: ['mail'],
  params: allowDenyDomainsSchema,
  description: 'the envelope sender\'s domain must pass the allow and deny lists',
  create(params) {
    const policy = new DomainPolicy(params);
    return {
      evaluate(ctx) {
        const sender = ctx.envelope.sender;
        if (sender === undefined || sender === '') return CONTINUE;
        const domain = domainOfAddress(sender);
        if (domain !== undefined && policy.permits(domain)) return CONTINUE;
        const shown = sender.slice(sender.lastIndexOf('@') + 1) || sender;
        return { action: 'reject', code: 550, enhanced: '5.7.1', text: `sending as ${quoted(shown)} is not allowed` };
      },
    };
  },
};

export default senderDomains;
