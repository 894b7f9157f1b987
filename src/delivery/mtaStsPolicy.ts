/**
 * MTA-STS (RFC 8461) in its pure parts: the `_mta-sts` TXT record, the policy file, and MX
 * host matching. No I/O here; discovery, fetching and caching live in mtaSts.ts.
 */

export type MtaStsMode = 'enforce' | 'testing' | 'none';

export interface MtaStsPolicy {
  /** The policy id from the `_mta-sts` TXT record it was fetched for (section 3.1). */
  id: string;
  mode: MtaStsMode;
  /** MX patterns, lower-case, without trailing dots: "mail.example.com" or "*.example.net". */
  mx: string[];
  /** How long the policy may be cached and applied after it was fetched (section 3.2). */
  maxAgeSeconds: number;
}

/** Section 3.2: max_age is at most 31557600 seconds (about a year). */
export const MAX_POLICY_AGE_SECONDS = 31_557_600;

const MODES: readonly MtaStsMode[] = ['enforce', 'testing', 'none'];

/** Section 3.1: sts-id = 1*32(ALPHA / DIGIT). */
const POLICY_ID = /^[A-Za-z0-9]{1,32}$/;
/** Section 3.2: sts-policy-max-age-value = 1*10(DIGIT). */
const MAX_AGE = /^[0-9]{1,10}$/;
/** RFC 5321 4.1.2 sub-domain: Let-dig [Ldh-str]. */
const LABEL = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/;
/** RFC 5234 WSP: space and horizontal tab. */
const TRAILING_WSP = /[ \t]+$/;

/**
 * The id of the one usable `_mta-sts` TXT record among `records` (Node's TXT shape: each
 * record is an array of character-strings), or undefined when there is none.
 *
 * Section 3.1: records that do not begin with "v=STSv1" are discarded; if the number left is
 * not exactly one, or that one is not valid, the domain has no available policy.
 */
export function policyIdFromTxtRecords(records: unknown): string | undefined {
  if (!Array.isArray(records)) return undefined;
  // A record's character-strings are one value split at 255 octets (RFC 7208 3.3 does the
  // same for SPF): they are joined without separators.
  const texts = records.map((record) => (Array.isArray(record) ? record.join('') : String(record)));
  const candidates = texts.filter((text) => /^v=STSv1(?:[ \t;]|$)/.test(text));
  if (candidates.length !== 1) return undefined;
  return parseTxtRecordId(candidates[0]!);
}

/**
 * The id of one `v=STSv1` record, or undefined when the record is not valid.
 * sts-text-record = sts-version 1*(sts-sep sts-field) [sts-sep], sts-sep = *WSP ";" *WSP.
 */
function parseTxtRecordId(text: string): string | undefined {
  const fields = text.split(';').map((field) => field.replace(/^[ \t]+|[ \t]+$/g, ''));
  if (fields[0] !== 'v=STSv1') return undefined;
  // One trailing separator is allowed, so the last field may be empty; no other may be.
  if (fields.length > 1 && fields[fields.length - 1] === '') fields.pop();
  let id: string | undefined;
  for (const field of fields.slice(1)) {
    const eq = field.indexOf('=');
    if (eq <= 0) return undefined;
    // Section 3.1: of a duplicated non-repeated field only the first counts; unknown
    // extension fields are ignored.
    if (field.slice(0, eq) === 'id' && id === undefined) id = field.slice(eq + 1);
  }
  return id !== undefined && POLICY_ID.test(id) ? id : undefined;
}

/**
 * The policy file at https://mta-sts.<domain>/.well-known/mta-sts.txt, parsed as RFC 8461
 * section 3.2 describes; throws an Error naming the problem when the policy is not valid.
 *
 * Key/value lines end in CRLF or LF; keys and the version and mode values are case-sensitive
 * (the ABNF's %s). Unknown keys are ignored, and of a duplicated field other than `mx` only
 * the first counts. `mx` may be left out only when the mode is `none`.
 */
export function parseMtaStsPolicy(text: string): Omit<MtaStsPolicy, 'id'> {
  let version: string | undefined;
  let mode: string | undefined;
  let maxAge: string | undefined;
  const mx: string[] = [];

  const lines = text.split(/\r?\n/);
  lines.forEach((rawLine, index) => {
    const line = rawLine.replace(TRAILING_WSP, '');
    // Blank lines (a trailing newline, a blank line at the end) carry nothing.
    if (line === '') return;
    const colon = line.indexOf(':');
    if (colon <= 0) throw new Error(`MTA-STS policy line ${index + 1} is not a "key: value" pair: ${JSON.stringify(truncate(line))}`);
    const key = line.slice(0, colon);
    // sts-policy-field-delim = ":" *WSP
    const value = line.slice(colon + 1).replace(/^[ \t]+/, '');
    switch (key) {
      case 'version':
        version ??= value;
        break;
      case 'mode':
        mode ??= value;
        break;
      case 'max_age':
        maxAge ??= value;
        break;
      case 'mx':
        mx.push(normalizeMxPattern(value));
        break;
      default:
        // Section 3.2: unknown fields are ignored.
        break;
    }
  });

  if (version === undefined) throw new Error('MTA-STS policy has no version field');
  if (version !== 'STSv1') throw new Error(`MTA-STS policy version must be STSv1, got ${JSON.stringify(truncate(version))}`);
  if (mode === undefined) throw new Error('MTA-STS policy has no mode field');
  if (!isMode(mode)) throw new Error(`MTA-STS policy mode must be enforce, testing or none, got ${JSON.stringify(truncate(mode))}`);
  if (maxAge === undefined) throw new Error('MTA-STS policy has no max_age field');
  const maxAgeSeconds = MAX_AGE.test(maxAge) ? Number(maxAge) : Number.NaN;
  if (!(maxAgeSeconds <= MAX_POLICY_AGE_SECONDS)) {
    throw new Error(`MTA-STS policy max_age must be whole seconds from 0 to ${MAX_POLICY_AGE_SECONDS}, got ${JSON.stringify(truncate(maxAge))}`);
  }
  if (mx.length === 0 && mode !== 'none') throw new Error(`MTA-STS policy in mode ${mode} has no mx field`);
  return { mode, mx, maxAgeSeconds };
}

/**
 * Whether `mxHost` is allowed by one of `patterns` (section 4.1). A pattern is a host name or
 * "*." and a domain; the wildcard stands for exactly one leftmost label, so "*.example.com"
 * matches "mail.example.com" but neither "example.com" nor "a.mail.example.com". Host names
 * compare case-insensitively (RFC 4343) and a trailing root dot is ignored.
 */
export function mxMatchesPolicy(mxHost: string, patterns: readonly string[]): boolean {
  const host = normalizeHostName(mxHost);
  if (host === '') return false;
  return patterns.some((raw) => {
    const pattern = normalizeHostName(raw);
    if (!pattern.startsWith('*.')) return pattern !== '' && pattern === host;
    const suffix = pattern.slice(1); // ".example.com"
    if (suffix.length < 2 || !host.endsWith(suffix)) return false;
    const label = host.slice(0, host.length - suffix.length);
    return label !== '' && !label.includes('.');
  });
}

/** Lower-case, without the trailing root dot. */
export function normalizeHostName(name: string): string {
  return name.trim().toLowerCase().replace(/\.+$/, '');
}

/** sts-policy-mx-value = ["*."] Domain; stored normalised so matching need not re-check it. */
function normalizeMxPattern(value: string): string {
  const pattern = normalizeHostName(value);
  const domain = pattern.startsWith('*.') ? pattern.slice(2) : pattern;
  const labels = domain.split('.');
  if (domain === '' || !labels.every((label) => label.length <= 63 && LABEL.test(label))) {
    throw new Error(`MTA-STS policy mx is not a host name or "*." and a domain: ${JSON.stringify(truncate(value))}`);
  }
  return pattern;
}

function isMode(value: string): value is MtaStsMode {
  return (MODES as readonly string[]).includes(value);
}

/** Policies come from the network: quote at most a bounded piece of a bad value in errors. */
function truncate(value: string): string {
  return value.length > 80 ? `${value.slice(0, 80)}...` : value;
}
