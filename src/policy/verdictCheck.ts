/**
 * A verdict is the one thing a rule hands to the SMTP adapter, which puts its code and text
 * on the wire. One that would make a wrong or malformed reply is the rule's fault, not the
 * client's, so the engine checks every verdict here before acting on it.
 */

// RFC 3463 section 2: class.subject.detail, class 2, 4 or 5, subject and detail 1 to 3 digits.
const ENHANCED = /^([245])\.(?:0|[1-9]\d{0,2})\.(?:0|[1-9]\d{0,2})$/;
// RFC 5322 section 3.6.8: a field name is printable US-ASCII except the colon.
const FIELD_NAME = /^[\x21-\x39\x3b-\x7e]+$/;

/** What is wrong with `value` as a verdict, or undefined when it is a valid one. */
export function verdictProblem(value: unknown): string | undefined {
  if (value === null || typeof value !== 'object') return `the verdict is ${value === null ? 'null' : typeof value}, not an object`;
  const verdict = value as Record<string, unknown>;
  const annotationsProblem = annotationProblem(verdict.annotations);
  if (verdict.action === 'continue') return annotationsProblem;
  if (verdict.action !== 'reject' && verdict.action !== 'defer') {
    return `the verdict's action is ${JSON.stringify(verdict.action)}, not continue, reject or defer`;
  }
  const { action, code, enhanced, text } = verdict;
  // RFC 5321 section 4.2.1: 4yz is a transient, 5yz a permanent negative reply, y from 0 to 5.
  const wantClass = action === 'reject' ? 5 : 4;
  if (typeof code !== 'number' || !Number.isInteger(code) || Math.floor(code / 100) !== wantClass || Math.floor(code / 10) % 10 > 5) {
    return `a ${action} needs a ${wantClass}xx reply code, got ${JSON.stringify(code)}`;
  }
  const match = typeof enhanced === 'string' ? ENHANCED.exec(enhanced) : null;
  if (!match) return `the enhanced status code ${JSON.stringify(enhanced)} is not class.subject.detail (RFC 3463)`;
  // RFC 3463 section 3: the class must agree with the reply code's first digit.
  if (Number(match[1]) !== wantClass) return `the enhanced status code ${enhanced} does not match the reply code ${code}`;
  if (typeof text !== 'string' || text.trim() === '') return 'the reply text is empty';
  // A CR or LF would end the reply line early and let a rule write a second reply (or worse).
  if (/[\r\n]/.test(text)) return 'the reply text contains a line break';
  return annotationsProblem;
}

function annotationProblem(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (value === null || typeof value !== 'object') return 'annotations must be an object';
  const { headers, tags } = value as Record<string, unknown>;
  if (headers !== undefined) {
    if (!Array.isArray(headers)) return 'annotations.headers must be a list';
    for (const header of headers as unknown[]) {
      const { name, value: fieldValue } = (header ?? {}) as Record<string, unknown>;
      if (typeof name !== 'string' || !FIELD_NAME.test(name)) return `annotations.headers has an invalid field name ${JSON.stringify(name)}`;
      // Headers are added as written; a line break would let a rule inject further fields.
      if (typeof fieldValue !== 'string' || /[\r\n]/.test(fieldValue)) return `annotations.headers ${name} needs a one-line text value`;
    }
  }
  if (tags !== undefined && (!Array.isArray(tags) || tags.some((t) => typeof t !== 'string'))) {
    return 'annotations.tags must be a list of strings';
  }
  return undefined;
}
