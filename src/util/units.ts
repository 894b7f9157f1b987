/**
 * Sizes and durations are written as text in the configuration ("25MiB", "15m") so a reader
 * never has to count zeros. Both parsers reject anything they do not fully understand.
 */

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1000,
  kb: 1000,
  m: 1000 ** 2,
  mb: 1000 ** 2,
  g: 1000 ** 3,
  gb: 1000 ** 3,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
};

const DURATION_UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** "25MiB" -> 26214400. Throws RangeError naming the text when it is not a size. */
export function parseSize(text: string | number): number {
  if (typeof text === 'number') {
    if (Number.isSafeInteger(text) && text >= 0) return text;
    throw new RangeError(`"${text}" is not a size: expected a whole number of bytes`);
  }
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = match ? SIZE_UNITS[match[2]!.toLowerCase()] : undefined;
  if (!match || unit === undefined) {
    throw new RangeError(`"${text}" is not a size: expected a number with B, KiB, MiB, GiB, kB, MB or GB`);
  }
  return Math.round(Number(match[1]) * unit);
}

/**
 * "15m" -> 900000 (milliseconds). Compound forms such as "1h30m" are accepted, as Go and
 * Prometheus write them. Throws RangeError naming the text when it is not a duration.
 */
export function parseDuration(text: string | number): number {
  if (typeof text === 'number') {
    throw new RangeError(`"${text}" is not a duration: write it with a unit, e.g. "${text}s"`);
  }
  const trimmed = text.trim();
  const part = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let total = 0;
  let consumed = 0;
  let match: RegExpExecArray | null;
  while ((match = part.exec(trimmed)) !== null) {
    total += Number(match[1]) * DURATION_UNITS[match[2]!]!;
    consumed = part.lastIndex;
  }
  if (trimmed.length === 0 || consumed !== trimmed.length) {
    throw new RangeError(`"${text}" is not a duration: expected e.g. 500ms, 30s, 15m, 2h, 5d`);
  }
  return Math.round(total);
}

/** 26214400 -> "25MiB", for summaries and log lines. */
export function formatSize(bytes: number): string {
  for (const [unit, factor] of [['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]] as const) {
    if (bytes >= factor && bytes % factor === 0) return `${bytes / factor}${unit}`;
  }
  return `${bytes}B`;
}

/** 900000 -> "15m", for summaries and log lines. */
export function formatDuration(ms: number): string {
  for (const [unit, factor] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms >= factor && ms % factor === 0) return `${ms / factor}${unit}`;
  }
  return `${ms}ms`;
}
