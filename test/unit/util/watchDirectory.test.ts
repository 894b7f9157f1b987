import { describe, test } from 'node:test';
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { watchDirectory } from '../../../src/util/fileWatcher.js';

/** Resolves on the next change, or rejects after 10s (and keeps the process alive until then). */
function changes(dir: string, filter?: (name: string) => boolean) {
  let deliver: (() => void) | undefined;
  const watcher = watchDirectory(dir, () => deliver?.(), { debounceMs: 20, pollMs: 100, ...(filter ? { filter } : {}) });
  const next = () =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no change seen within 10s')), 10_000);
      deliver = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  return { watcher, next };
}

describe('watching a directory', () => {
  test('adding, editing and removing a file are each a change', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'postern-watch-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const { watcher, next } = changes(dir);
    t.after(() => watcher.close());

    let change = next();
    writeFileSync(join(dir, 'a.yaml'), 'one');
    await change;
    change = next();
    writeFileSync(join(dir, 'a.yaml'), 'two, longer');
    await change;
    change = next();
    unlinkSync(join(dir, 'a.yaml'));
    await change;
  });

  test('a directory that does not exist yet is noticed when it appears', async (t) => {
    const parent = mkdtempSync(join(tmpdir(), 'postern-watch-'));
    t.after(() => rmSync(parent, { recursive: true, force: true }));
    const dir = join(parent, 'policies');
    const { watcher, next } = changes(dir, (name) => name.endsWith('.yaml'));
    t.after(() => watcher.close());

    const change = next();
    mkdirSync(dir);
    writeFileSync(join(dir, 'a.yaml'), 'one');
    await change;
  });
});
