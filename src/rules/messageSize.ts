import { z } from 'zod';
import { CONTINUE, type PolicyContext, type RuleType } from '../policy/types.js';
import { sizeSchema } from './shared/paramSchemas.js';

/**
 * A size limit below the global one, for whom the rule's `when` selects (a user, a group).
 * At `mail` it judges the SIZE= the client declared (RFC 1870 section 6.1: a server may refuse
 * with 552 at MAIL so the client does not send a message that would be refused anyway); at
 * `data` the size actually received.
 */

const paramsSchema = z.strictObject({
  /** The largest message accepted: "10MiB", "25MB" or a number of bytes. */
  max: sizeSchema,
});

export type MessageSizeParams = z.output<typeof paramsSchema>;

function sizeAt(ctx: PolicyContext): number | undefined {
  return ctx.stage === 'data' ? ctx.message?.size : ctx.envelope.declaredSize;
}

const messageSize: RuleType<MessageSizeParams> = {
  type: 'message-size',
  stages: ['data', 'mail'],
  params: paramsSchema,
  description: 'refuses messages larger than `max` (the declared SIZE= at mail, the real size at data)',
  create(params) {
    return {
      evaluate(ctx) {
        const size = sizeAt(ctx);
        if (size === undefined || size <= params.max) return CONTINUE;
        // RFC 1870 section 6: 552, and RFC 3463 5.3.4 "message too big for system".
        return {
          action: 'reject',
          code: 552,
          enhanced: '5.3.4',
          text: `message size exceeds the limit of ${params.max} bytes for this sender`,
        };
      },
    };
  },
};

export default messageSize;
