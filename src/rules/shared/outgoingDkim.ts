import type { PolicyMessage, RuleDeps } from '../../policy/types.js';
import { isAligned, type AlignmentMode } from './alignment.js';
import { checkDkimSignatures, hasDkimSignature, tooManySignatures } from './dkimSignatures.js';
import { quoted } from './replyText.js';

/**
 * Will the message carry, as it leaves, a valid DKIM signature aligned with its From domain
 * (RFC 7489 section 3.1.1)? Two ways it can:
 * - Postern signs it: `deps.signing` names the d= its signer will use for that From domain;
 * - it arrives signed by the client (clients that sign themselves), and a signature whose d=
 *   aligns verifies now. Postern only prepends header fields, which leaves it valid.
 * The first is known without reading the message, so it is asked first.
 */
export type DkimAlignment =
  | { aligned: true; domain: string }
  /** `temporary`: an aligned signature's key could not be looked up; it may align next time. */
  | { aligned: false; temporary: boolean; reasons: string[] };

/** Whether Postern's own signature for `fromDomain` aligns, and if not, why (for the reply). */
export function signingAlignment(fromDomain: string, mode: AlignmentMode, signing: RuleDeps['signing']): DkimAlignment {
  const signingDomain = signing?.signingDomainFor(fromDomain);
  if (signingDomain === undefined) return { aligned: false, temporary: false, reasons: [`no DKIM key for ${quoted(fromDomain)} here`] };
  if (isAligned(fromDomain, signingDomain, mode)) return { aligned: true, domain: signingDomain };
  return {
    aligned: false,
    temporary: false,
    reasons: [`the DKIM key here signs as ${quoted(signingDomain)}, which is not ${mode === 's' ? 'strictly ' : ''}aligned`],
  };
}

/** Whether a signature the message already carries verifies and aligns with `fromDomain`. */
export async function ownSignatureAlignment(
  fromDomain: string,
  mode: AlignmentMode,
  message: PolicyMessage,
  deps: Pick<RuleDeps, 'resolver' | 'clock'>,
  signal?: AbortSignal,
): Promise<DkimAlignment> {
  if (!hasDkimSignature(message.headers)) return { aligned: false, temporary: false, reasons: ['the message carries no DKIM signature'] };
  const tooMany = tooManySignatures(message.headers);
  if (tooMany) return { aligned: false, temporary: false, reasons: [tooMany] };
  const checks = await checkDkimSignatures(message, deps, signal);
  const candidates = checks.filter((check) => isAligned(fromDomain, check.domain, mode));
  const passing = candidates.find((check) => check.outcome === 'pass');
  if (passing) return { aligned: true, domain: passing.domain };
  // A key that could not be looked up may verify next time: that is the reason worth giving.
  const failed = candidates.find((check) => check.outcome === 'temperror') ?? candidates[0];
  if (failed === undefined) {
    const others = [...new Set(checks.map((check) => check.domain))];
    const reason =
            others.length === 0
        ? "the message's own DKIM signature cannot be read"
        : `the message's own DKIM signature of ${quoted(others.join(', '))} is not aligned`;
    return { aligned: false, temporary: false, reasons: [reason] };
  }
  return {
    aligned: false,
    temporary: failed.outcome === 'temperror',
    reasons: [`the message's own DKIM signature of ${quoted(failed.domain)} does not verify: ${quoted(failed.reason)}`],
  };
}

/** Postern's signature first, then the message's own; the reasons of both when neither aligns. */
export async function outgoingDkimAlignment(
  fromDomain: string,
  mode: AlignmentMode,
  message: PolicyMessage,
  deps: Pick<RuleDeps, 'resolver' | 'clock' | 'signing'>,
  signal?: AbortSignal,
): Promise<DkimAlignment> {
  const signing = signingAlignment(fromDomain, mode, deps.signing);
  if (signing.aligned) return signing;
  if (!hasDkimSignature(message.headers)) return signing;
  const own = await ownSignatureAlignment(fromDomain, mode, message, deps, signal);
  if (own.aligned) return own;
  return { aligned: false, temporary: own.temporary, reasons: [...signing.reasons, ...own.reasons] };
}
