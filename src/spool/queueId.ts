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
  checkTimestamp(timestamp);
  const bytes = random(4);
  if (bytes.length < 4) throw new RangeError(`Cannot make a queue ID: expected 4 random bytes, got ${bytes.length}`);
  return encode(timestamp, bytes.readUInt32BE(0));
}

/**
 * Queue IDs for one spool. Within one millisecond the random part of the previous ID is
 * incremented instead of drawn again (ULID's monotonic mode): 32 random bits alone would give
 * two messages of the same millisecond the same ID about once in 2^32/n² tries, which a busy
 * gateway reaches; incrementing makes IDs from one process unique and still sorted.
 */
export class QueueIdGenerator {
  private lastTimestamp = -1;
  private lastRandom = 0;

  constructor(
    private readonly clock: Clock,
    private readonly random: (size: number) => Buffer = randomBytes,
  ) {}

  next(): string {
    let timestamp = Math.floor(this.clock.now());
    // A clock that steps back (NTP) keeps counting from the last ID, so the order still holds.
    if (timestamp <= this.lastTimestamp) {
      timestamp = this.lastTimestamp;
      this.lastRandom += 1;
      if (this.lastRandom > 0xffffffff) {
        timestamp += 1;
        this.lastRandom = this.random(4).readUInt32BE(0) >>> 1;
      }
    } else {
      this.lastRandom = this.random(4).readUInt32BE(0) >>> 1; // room to count up within the millisecond
    }
    checkTimestamp(timestamp);
    this.lastTimestamp = timestamp;
    return encode(timestamp, this.lastRandom);
  }
}

function checkTimestamp(timestamp: number): void {
  if (!Number.isSafeInteger(timestamp) || timestamp < 0 || timestamp > MAX_TIMESTAMP) {
    throw new RangeError(`Cannot make a queue ID: clock time ${timestamp} does not fit in 48 bits`);
  }
}

function encode(timestamp: number, randomPart: number): string {
  let value = (BigInt(timestamp) << 32n) | BigInt(randomPart);
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
