import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, type Logger } from '../../../src/util/logger.js';

/** A fresh directory under the system temp dir, removed by the returned cleanup. */
export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'postern-auth-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface LogRecord {
  level: string;
  msg: string;
  [field: string]: unknown;
}

/** A real pino logger whose lines are kept, parsed, for assertions. */
export function capturingLogger(): { logger: Logger; records: LogRecord[]; text: () => string } {
  const lines: string[] = [];
  const logger = createLogger('debug', { write: (line: string) => void lines.push(line) });
  return {
    logger,
    get records() {
      return lines.map((line) => JSON.parse(line) as LogRecord);
    },
    text: () => lines.join(''),
  };
}

/** Resolves with the first value `register` delivers, or rejects after `timeoutMs`. */
export function nextEvent<T>(register: (deliver: (value: T) => void) => void, what: string, timeoutMs = 10_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`Timed out waiting for ${what}`)), timeoutMs);
    register((value) => {
      clearTimeout(timer);
      resolve(value);
    });
  });
}
