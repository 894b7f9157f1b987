import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { createLogger, type Logger } from '../../../src/util/logger.js';
import type { CertificateInfo } from '../../../src/tls/certificateInfo.js';
import type { CertificateStore } from '../../../src/tls/certificateStore.js';

/** A fresh directory under the OS temp dir, removed when the test ends. */
export async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'postern-tls-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

export interface LogLine {
  level: string;
  msg: string;
  [field: string]: unknown;
}

/** A real pino logger whose JSON lines are kept for assertions. */
export function capturingLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = createLogger('debug', { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
  return { logger, lines };
}

/**
 * Resolves with the info of the store's next change. The timeout only turns a missing event
 * into a clear failure instead of a hung test; it is not a performance assertion.
 */
export function nextChange(store: CertificateStore, timeoutMs = 15_000): Promise<CertificateInfo> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`the certificate store reported no change within ${timeoutMs} ms`));
    }, timeoutMs);
    const off = store.onChange((_material, info) => {
      clearTimeout(timer);
      off();
      resolve(info);
    });
  });
}

/** Small intervals so file changes are noticed quickly in tests. */
export const fastWatch = { debounceMs: 30, pollMs: 100 } as const;
