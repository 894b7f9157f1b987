import { randomBytes } from 'node:crypto';
import type { Clock } from '../util/clock.js';

/**
 * Queue IDs: 16 characters of Crockford base32 carrying a 48-bit millisecond timestamp
 * followed by 32 random bits (the ULID idea, shortened). Fixed width, so sorting the text
 * sorts by acceptance time; the alphabet has no I, L, O or U, so an ID read out over the
 * phone or copied from a log survives, and every character is safe in a file name on any
 * file system, including case-insensitive ones (the alphabet is upper case only).
 */
const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const ID_LENGTH = 16;
const MAX_TIMESTAMP = 2 ** 48 - 1;

export const QUEUE_ID_PATTERN = /^[0-9A-HJKMNP-TV-Z]{16}$/;

export function createQueueId(clock: Clock, random: (size: number) => Buffer = randomBytes): string {
  const timestamp = Math.floor(clock.now());
  if (!Number.isSafeInteger(timestamp) || timestamp < 0 || timestamp > MAX_TIMESTAMP) {
    throw new RangeError(`Cannot make a queue ID: clock time ${timestamp} does not fit in 48 bits`);
  }
  const bytes = random(4);
  if (bytes.length < 4) throw new RangeError(`Cannot make a queue ID: expected 4 random bytes, got ${bytes.length}`);
  let value = (BigInt(timestamp) << 32n) | BigInt(bytes.readUInt32BE(0));
  let text = '';
  for (let i = 0; i < ID_LENGTH; i++) {
    text = CROCKFORD[Number(value & 31n)]! + text;
    value >>= 5n;
  }
  return text;
}

export function isQueueId(text: string): boolean {
  return QUEUE_ID_PATTERN.test(text);
}

/** The acceptance time encoded in an ID, in ms since the epoch; for logs and sanity checks. */
export function queueIdTime(id: string): number {
  if (!isQueueId(id)) throw new RangeError(`"${id}" is not a queue ID`);
  let value = 0n;
  for (const char of id) value = (value << 5n) | BigInt(CROCKFORD.indexOf(char));
  return Number(value >> 32n);
}
