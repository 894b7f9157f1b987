import type { DNSResolver } from 'mailauth';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import type { HeaderField, PolicyMessage, RuleDeps } from '../../policy/types.js';
import { asciiDomain } from '../../policy/match/addresses.js';

/**
 * The DKIM signatures a message arrives with (RFC 6376), each verified with mailauth against
 * the injected resolver and clock, and reduced to what a rule decides on:
 * - pass: the signature verifies over the whole body;
 * - unacceptable: it verifies, but local policy cannot accept it (RFC 7372 section 3.1,
 *   "no acceptable signature"): a key shorter than 1024 bits (RFC 8301 section 3.2), or an l=
 *   tag leaving part of the body unsigned, so anything could be appended (RFC 6376 section 8.2);
 * - temperror: the key could not be looked up for a reason that may pass;
 * - fail: anything else (bad signature, body hash mismatch, no key, expired...).
 * DKIM-Signature fields mailauth cannot use at all (unknown algorithm, no d= or s=) yield no entry.
 */
export interface SignatureCheck {
  /** The signing domain (d=), lower-case ASCII. */
  domain: string;
  outcome: 'pass' | 'unacceptable' | 'temperror' | 'fail';
  /** Why it is not a pass, for the reply ("body hash did not verify"); '' for a pass. */
  reason: string;
}

/** Signatures verified per message; real mail carries one to three (author, ESP, list). */
export const MAX_SIGNATURES = 10;

/**
 * Why the message's signatures are not verified at all, or undefined. RFC 6376 section 6.1 lets
 * a verifier limit the signatures it tries: each can cost a DNS look-up, a public-key
 * operation and a pass of its own over the body (every l= is a separate hash), so an
 * unbounded count is a way to make one message cost minutes of work.
 */
export function tooManySignatures(headers: readonly HeaderField[]): string | undefined {
  const count = headers.filter((field) => field.key === 'dkim-signature').length;
  return count > MAX_SIGNATURES ? `the message carries ${count} DKIM signatures; at most ${MAX_SIGNATURES} are verified` : undefined;
}

/** Whether the message carries any DKIM-Signature field at all. */
export function hasDkimSignature(headers: readonly HeaderField[]): boolean {
  return headers.some((field) => field.key === 'dkim-signature');
}

/** One verification of a message, shared by the rules that ask for it while it runs or after. */
interface SharedCheck {
  result: Promise<SignatureCheck[]>;
  /** Callers waiting for `result`; when the last one gives up, the verification stops. */
  waiting: number;
  stop: AbortController;
}

const verifications = new WeakMap<PolicyMessage, SharedCheck>();

/**
 * Verifies every DKIM signature of `message`, once per message: dkim-verify, dmarc and
 * bulk-sender all ask, and each verification is a pass over the body, a DNS look-up and a
 * public-key operation per signature. The work stops reading the message when every caller
 * waiting for it has been aborted (`signal`); a caller that comes later starts it again.
 */
export function checkDkimSignatures(message: PolicyMessage, deps: Pick<RuleDeps, 'resolver' | 'clock'>, signal?: AbortSignal): Promise<SignatureCheck[]> {
  if (signal?.aborted) return Promise.reject(abandoned(signal));
  let shared = verifications.get(message);
  if (!shared || shared.stop.signal.aborted) {
    const stop = new AbortController();
    shared = { result: verifySignatures(message, deps, stop.signal), waiting: 0, stop };
    verifications.set(message, shared);
  }
  const check = shared;
  check.waiting += 1;
  return new Promise((resolve, reject) => {
    let settled = false;
    const leave = () => {
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      check.waiting -= 1;
    };
    const onAbort = () => {
      if (settled) return;
      leave();
      if (check.waiting === 0) check.stop.abort();
      reject(abandoned(signal!));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    check.result.then(
      (checks) => {
        if (settled) return;
        leave();
        resolve(checks);
      },
      (err: unknown) => {
        if (settled) return;
        leave();
        reject(err);
      },
    );
  });
}

function abandoned(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error('the DKIM check was abandoned');
}

async function verifySignatures(message: PolicyMessage, deps: Pick<RuleDeps, 'resolver' | 'clock'>, signal: AbortSignal): Promise<SignatureCheck[]> {
  const input = message.open();
  const stop = () => input.destroy(new Error('the DKIM check was abandoned'));
  if (signal.aborted) stop();
  signal.addEventListener('abort', stop, { once: true });
  try {
    const verified = await dkimVerify(input, {
      // DnsResolver is mailauth's resolver shape with `unknown` records; they pass through as given.
      resolver: deps.resolver as DNSResolver,
      curTime: new Date(deps.clock.now()),
    });
    return verified.results
      .filter((result) => typeof result.signingDomain === 'string' && result.signingDomain !== '')
      .map((result): SignatureCheck => {
        const domain = asciiDomain(result.signingDomain);
        const { result: status, comment, underSized } = result.status;
        if (status === 'pass') {
          return underSized ? { domain, outcome: 'unacceptable', reason: 'it leaves part of the body unsigned (l= tag)' } : { domain, outcome: 'pass', reason: '' };
        }
        if (status === 'policy') return { domain, outcome: 'unacceptable', reason: 'its key is shorter than 1024 bits' };
        if (status === 'temperror' || status === 'temperr') return { domain, outcome: 'temperror', reason: 'its key could not be looked up (DNS)' };
        if (comment === 'no key') return { domain, outcome: 'fail', reason: `no key is published at ${result.selector ?? ''}._domainkey.${domain}` };
        return { domain, outcome: 'fail', reason: comment || status };
      });
  } finally {
    signal.removeEventListener('abort', stop);
    input.destroy();
  }
}
