import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import bcrypt from 'bcryptjs';

/**
 * Password hashes in the users file.
 *
 * New hashes are scrypt (RFC 7914) from Node's crypto, written in a PHC-like text form:
 *
 *     $scrypt$ln=15,r=8,p=1$<salt, base64 without padding>$<hash, base64 without padding>
 *
 * `ln` is log2 of the cost N. bcrypt hashes (`$2a$`, `$2b$`, `$2y$`, as `htpasswd -B` writes)
 * are verified too, so an existing htpasswd file can be carried over.
 *
 * Passwords are hashed as their UTF-8 bytes, without SASLprep (RFC 4013) normalisation, as
 * Dovecot does: what the client sends is what is compared.
 */

export interface ScryptParams {
  /** log2 of the CPU/memory cost N. */
  ln: number;
  /** Block size. */
  r: number;
  /** Parallelisation. */
  p: number;
}

/** N = 32768, r = 8, p = 1: 32 MiB and roughly 100 ms per hash; RFC 7914 section 2's interactive-login range. */
export const DEFAULT_SCRYPT_PARAMS: Readonly<ScryptParams> = Object.freeze({ ln: 15, r: 8, p: 1 });

const SALT_BYTES = 16;
const KEY_BYTES = 32;

/*
 * Limits on what a stored hash may ask for. The users file is trusted, but a typo such as
 * ln=51 must not make every login allocate terabytes or spin for hours.
 */
const MAX_SCRYPT_MEMORY = 256 * 1024 * 1024;
const SCRYPT_LIMITS = { ln: [1, 24], r: [1, 32], p: [1, 16], saltBytes: [8, 64], keyBytes: [16, 64] } as const;
/*
 * htpasswd -C accepts 4 to 17, but bcryptjs is plain JavaScript on the main thread: every
 * verification takes its whole CPU time from the event loop that serves every other session,
 * and that time doubles per cost step - cost 12 is a few hundred ms, cost 17 over ten
 * seconds per login attempt, which anyone who knows a user name could trigger at will. 12 is
 * the highest cost accepted; a hash above it is refused as unsupported (`postern user passwd
 * NAME` re-hashes with scrypt, which Node runs on its thread pool).
 */
const BCRYPT_COST = [4, 12] as const;

const SCRYPT_FORMAT = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/;
const BCRYPT_FORMAT = /^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$/;

interface ParsedScrypt {
  params: ScryptParams;
  salt: Buffer;
  key: Buffer;
}

/** Hash a password for the users file (scrypt with a fresh random salt). */
export async function hashPassword(password: string, params: ScryptParams = DEFAULT_SCRYPT_PARAMS): Promise<string> {
  if (!withinScryptLimits(params, SALT_BYTES, KEY_BYTES)) {
    throw new RangeError(`scrypt parameters ln=${params.ln},r=${params.r},p=${params.p} are outside the supported range`);
  }
  const salt = randomBytes(SALT_BYTES);
  const key = await deriveScryptKey(password, salt, KEY_BYTES, params);
  return formatScrypt({ params, salt, key });
}

/**
 * Whether `password` matches `hash`. False for a wrong password and for any hash text this
 * module does not understand; never throws for a bad hash. Comparison is constant-time.
 */
export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  const scryptHash = parseScrypt(hash);
  if (scryptHash) {
    try {
      const derived = await deriveScryptKey(password, scryptHash.salt, scryptHash.key.length, scryptHash.params);
      return timingSafeEqual(derived, scryptHash.key);
    } catch {
      return false;
    }
  }
  if (isSupportedBcrypt(hash)) {
    try {
      // bcryptjs compares the encoded hashes in constant time itself. Like every bcrypt, it
      // only looks at the first 72 bytes of the password.
      return await bcrypt.compare(password, hash);
    } catch {
      return false;
    }
  }
  return false;
}

/**
 * Spend the time of a real verification with the default parameters and answer false. Used
 * for an unknown user name, so a wrong name and a wrong password cannot be told apart by
 * how long the answer takes.
 */
export async function verifyAgainstDummy(password: string): Promise<false> {
  const dummy: ParsedScrypt = {
    params: DEFAULT_SCRYPT_PARAMS,
    salt: randomBytes(SALT_BYTES),
    key: randomBytes(KEY_BYTES),
  };
  const derived = await deriveScryptKey(password, dummy.salt, dummy.key.length, dummy.params);
  timingSafeEqual(derived, dummy.key);
  return false;
}

/**
 * Whether `hash` is a hash text `verifyPassword` can check: scrypt in the format above within
 * the parameter limits, or bcrypt $2a$/$2b$/$2y$ with a cost of 4 to 12.
 */
export function isSupportedHash(hash: string): boolean {
  return parseScrypt(hash) !== undefined || isSupportedBcrypt(hash);
}

function parseScrypt(hash: string): ParsedScrypt | undefined {
  const match = SCRYPT_FORMAT.exec(hash);
  if (!match) return undefined;
  const params: ScryptParams = { ln: Number(match[1]), r: Number(match[2]), p: Number(match[3]) };
  const salt = decodeBase64(match[4]!);
  const key = decodeBase64(match[5]!);
  if (!salt || !key || !withinScryptLimits(params, salt.length, key.length)) return undefined;
  return { params, salt, key };
}

function formatScrypt({ params, salt, key }: ParsedScrypt): string {
  const b64 = (bytes: Buffer) => bytes.toString('base64').replace(/=+$/, '');
  return `$scrypt$ln=${params.ln},r=${params.r},p=${params.p}$${b64(salt)}$${b64(key)}`;
}

/** Strict base64 (no padding, as PHC writes it): text that does not round-trip is rejected. */
function decodeBase64(text: string): Buffer | undefined {
  const bytes = Buffer.from(text, 'base64');
  return bytes.toString('base64').replace(/=+$/, '') === text ? bytes : undefined;
}

function withinScryptLimits(params: ScryptParams, saltBytes: number, keyBytes: number): boolean {
  const inRange = (value: number, [min, max]: readonly [number, number]) =>
    Number.isInteger(value) && value >= min && value <= max;
  return (
    inRange(params.ln, SCRYPT_LIMITS.ln) &&
    inRange(params.r, SCRYPT_LIMITS.r) &&
    inRange(params.p, SCRYPT_LIMITS.p) &&
    inRange(saltBytes, SCRYPT_LIMITS.saltBytes) &&
    inRange(keyBytes, SCRYPT_LIMITS.keyBytes) &&
    scryptMemory(params) <= MAX_SCRYPT_MEMORY
  );
}

/** RFC 7914 section 6: scrypt's working memory is 128 * N * r bytes (ROMix), plus 128 * r * p for B. */
function scryptMemory(params: ScryptParams): number {
  return 128 * 2 ** params.ln * params.r + 128 * params.r * params.p;
}

function isSupportedBcrypt(hash: string): boolean {
  const match = BCRYPT_FORMAT.exec(hash);
  if (!match) return false;
  const cost = Number(match[1]);
  return cost >= BCRYPT_COST[0] && cost <= BCRYPT_COST[1];
}

/**
 * At most this many scrypt derivations run at once. Each holds 32 MiB for ~100 ms on a libuv
 * pool thread; the pool is sized for the spool's fsyncs (see cli/postern.cts), and a burst of
 * logins must neither take every thread from the spool nor multiply memory by the pool size.
 */
const MAX_PARALLEL_DERIVATIONS = 4;
let running = 0;
const waiting: Array<() => void> = [];

async function deriveScryptKey(password: string, salt: Buffer, keyBytes: number, params: ScryptParams): Promise<Buffer> {
  if (running >= MAX_PARALLEL_DERIVATIONS) await new Promise<void>((resolve) => waiting.push(resolve));
  running++;
  try {
    return await runScrypt(password, salt, keyBytes, params);
  } finally {
    running--;
    waiting.shift()?.();
  }
}

function runScrypt(password: string, salt: Buffer, keyBytes: number, params: ScryptParams): Promise<Buffer> {
  const options: ScryptOptions = {
    N: 2 ** params.ln,
    r: params.r,
    p: params.p,
    // Node's default maxmem (32 MiB) is exactly what ln=15,r=8 needs and it refuses that;
    // allow twice the computed need.
    maxmem: 2 * scryptMemory(params),
  };
  return new Promise((resolve, reject) => {
    scrypt(password, salt, keyBytes, options, (err, key) =>
      err ? reject(err) : resolve(key),
    );
  });
}
