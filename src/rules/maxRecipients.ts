import { z } from 'zod';
import { CONTINUE, type RuleType } from '../policy/types.js';

/**
 * A per-message recipient limit. At `rcpt` the recipient that would go over the limit gets a
 * temporary 452 4.5.3: RFC 5321 section 4.5.3.1.10 says a client receiving it sends the
 * remaining recipients in a later transaction, so the message still reaches everyone. At
 * `data` (for a rule that only wants to judge the whole envelope) it is a permanent 550 5.5.3.
 */

const paramsSchema = z.strictObject({
  /** The most recipients one message may have. */
  max: z.number().int().positive(),
});

export type MaxRecipientsParams = z.output<typeof paramsSchema>;

const maxRecipients: RuleType<MaxRecipientsParams> = {
  type: 'max-recipients',
  stages: ['rcpt', 'data'],
  params: paramsSchema,
  description: 'at most `max` recipients per message',
  create(params) {
    const text = `too many recipients: at most ${params.max} per message`;
    return {
      evaluate(ctx) {
        const accepted = ctx.envelope.recipients.length;
        if (ctx.stage === 'rcpt') {
          return accepted + 1 > params.max ? { action: 'defer', code: 452, enhanced: '4.5.3', text } : CONTINUE;
        }
        return accepted > params.max ? { action: 'reject', code: 550, enhanced: '5.5.3', text } : CONTINUE;
      },
    };
  },
};

export default maxRecipients;
