import { z } from 'zod';
import { CONTINUE, type RuleType, type Verdict } from '../policy/types.js';
import { isAligned } from './shared/alignment.js';
import { authorOf } from './shared/authorAddress.js';
import { checkDkimSignatures, hasDkimSignature, tooManySignatures, type SignatureCheck } from './shared/dkimSignatures.js';
import { limitReply, listed } from './shared/replyLimit.js';
import { quoted } from './shared/replyText.js';

/**
 * A message that arrives already signed (clients that sign themselves) must carry at least one
 * DKIM signature that verifies (RFC 6376): a broken signature is one receivers would see too,
 * and a domain with a DMARC policy would then have its mail refused or junked.
 *
 * Replies use the codes of RFC 7372 section 3.1:
 * - 5.7.20 "no passing DKIM signature found": every signature fails (or none is readable, or
 *   `requireSignature` and there is none);
 * - 5.7.21 "no acceptable DKIM signature found": a signature verifies but local policy cannot
 *   accept it (a key under 1024 bits, RFC 8301; an l= tag leaving part of the body unsigned);
 * - 5.7.22 "no valid author-matched DKIM signature found": with `requireFromDomain`, signatures
 *   verify but none is of the From domain (relaxed alignment: the same organizational domain).
 * A key look-up that fails for a reason that may pass is deferred with 451 4.4.3: RFC 7372 has
 * no transient DKIM code, X.7.5 ("cryptographic failure") would read as a broken signature,
 * and X.4.3 ("directory server failure", RFC 3463) says what happened: DNS did not answer.
 * It defers only when no signature passes and the unanswered one could still decide.
 */

const paramsSchema = z.strictObject({
  /** Refuse unsigned messages too (by default they continue: there is nothing to check). */
  requireSignature: z.boolean().default(false),
  /** Require a valid signature whose d= aligns (relaxed) with the From domain, not just any valid one. */
  requireFromDomain: z.boolean().default(false),
});

export type DkimVerifyParams = z.output<typeof paramsSchema>;

const reject = (enhanced: string, text: string): Verdict => ({ action: 'reject', code: 550, enhanced, text: limitReply(text) });

/** The verdict when no signature passes: defer if one might pass next time, else name what failed. */
function noPassingSignature(checks: readonly SignatureCheck[]): Verdict {
  const unanswered = checks.find((check) => check.outcome === 'temperror');
  if (unanswered) {
    return {
      action: 'defer',
      code: 451,
      enhanced: '4.4.3',
      text: limitReply(`the DKIM key of ${quoted(unanswered.domain)} could not be looked up (DNS lookup failed); try again later`),
    };
  }
  const unacceptable = checks.filter((check) => check.outcome === 'unacceptable');
  if (unacceptable.length > 0) {
    return reject('5.7.21', listed(unacceptable.map((check) => `the DKIM signature of ${quoted(check.domain)} is not acceptable: ${quoted(check.reason)}`)));
  }
  return reject('5.7.20', listed(checks.map((check) => `the DKIM signature of ${quoted(check.domain)} does not verify: ${quoted(check.reason)}`)));
}

const dkimVerify: RuleType<DkimVerifyParams> = {
  type: 'dkim-verify',
  stages: ['data'],
  params: paramsSchema,
  description: 'a message arriving DKIM-signed must carry a valid signature (optionally one of its From domain)',
  create(params, deps) {
    return {
      async evaluate(ctx) {
        const message = ctx.message;
        if (!message) return CONTINUE;
        if (!hasDkimSignature(message.headers)) {
          return params.requireSignature ? reject('5.7.20', 'the message carries no DKIM signature; it must be signed') : CONTINUE;
        }
        const tooMany = tooManySignatures(message.headers);
        if (tooMany) return reject('5.7.20', tooMany);
        // A From problem is known without reading the message, and no signature can mend it.
        const author = params.requireFromDomain ? authorOf(message.headers) : undefined;
        if (author !== undefined && 'problem' in author) return reject('5.7.1', author.problem);

        const checks = await checkDkimSignatures(message, deps, ctx.signal);
        if (checks.length === 0) {
          return reject('5.7.20', 'the DKIM-Signature field cannot be used: unknown algorithm or canonicalization, or no d= or s= tag');
        }
        const passing = checks.filter((check) => check.outcome === 'pass');
        if (author === undefined) return passing.length > 0 ? CONTINUE : noPassingSignature(checks);

        const authorChecks = checks.filter((check) => isAligned(author.domain, check.domain, 'r'));
        if (authorChecks.some((check) => check.outcome === 'pass')) return CONTINUE;
        if (passing.length === 0) return noPassingSignature(checks);
        // Other domains' signatures verify; only the author's is missing or failing.
        const authorVerdict = authorChecks.length > 0 ? noPassingSignature(authorChecks) : undefined;
        if (authorVerdict?.action === 'defer') return authorVerdict;
        const why =
          authorVerdict?.action === 'reject'
            ? authorVerdict.text
            : `the message is signed by ${quoted(listed([...new Set(passing.map((check) => check.domain))]))} only`;
        deps.logger.info({ fromDomain: author.domain, signedBy: passing.map((check) => check.domain) }, 'no valid DKIM signature of the From domain');
        return reject('5.7.22', `no valid DKIM signature of the From domain ${quoted(author.domain)}: ${why}`);
      },
    };
  },
};

export default dkimVerify;
