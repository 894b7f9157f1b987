import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { Metrics } from '../../../src/metrics/metrics.js';

/** A fresh directory under the OS temp dir, removed when the test ends. */
export async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'postern-metrics-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * The value of one sample as /metrics would show it (`name` may be a histogram's _bucket, _sum
 * or _count); undefined when there is no such sample. Labels must match exactly.
 */
export async function valueOf(metrics: Metrics, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const wanted = Object.entries(labels)
    .map(([label, value]) => `${label}="${value}"`)
    .sort()
    .join(',');
  for (const line of (await metrics.registry.metrics()).split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const labelsHere = [...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map(([, label, value]) => `${label}="${value}"`).sort().join(',');
    if (labelsHere === wanted) return Number(match[3]);
  }
  return undefined;
}
