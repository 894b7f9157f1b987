import { readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { fsyncDirectory, removeIfPresent } from './durableFs.js';
import { parseEnvelope, type Envelope } from './envelope.js';
import { isQueueId } from './queueId.js';

export interface SpoolLayout {
  root: string;
  /** Messages being received and envelope rewrites in progress. Emptied at open. */
  tmp: string;
  /** Committed messages: `<ID>.eml` + `<ID>.json`. */
  queue: string;
  /** Records that could not be read, kept for a human. */
  corrupt: string;
}

export function spoolLayout(root: string): SpoolLayout {
  return { root, tmp: join(root, 'tmp'), queue: join(root, 'queue'), corrupt: join(root, 'corrupt') };
}

/**
 * Bring the spool directory back to a consistent state after whatever stopped the last
 * process (a clean stop, a crash, a power cut) and return the committed messages.
 *
 * - Everything in `tmp/` was never acknowledged: removed.
 * - `<ID>.eml` without `<ID>.json` is a crash between the two commit renames (or between the
 *   two unlinks of a removal): never acknowledged, or already delivered; removed.
 * - An envelope that cannot be read or does not match its message file is moved to
 *   `corrupt/` with its message, logged, and the rest of the spool carries on: one bad
 *   record must not keep every other message from being delivered.
 */
export async function recoverSpool(layout: SpoolLayout, logger: Logger): Promise<Envelope[]> {
  const leftovers = await readdir(layout.tmp);
  for (const name of leftovers) await rm(join(layout.tmp, name), { recursive: true, force: true });
  if (leftovers.length > 0) logger.info({ files: leftovers.length }, 'spool removed unfinished temp files');

  const names = new Set(await readdir(layout.queue));
  const envelopes: Envelope[] = [];
  let changed = leftovers.length > 0;

  // Envelopes are read many at once: one at a time, a queue of 100,000 messages took the
  // sum of 200,000 file-system round trips before the first delivery.
  const ids = [...names].filter((name) => name.endsWith('.json')).sort().map((name) => name.slice(0, -'.json'.length));
  const checked = await mapLimited(ids, RECOVERY_PARALLELISM, (id) => readChecked(layout, id, names));
  for (const { id, envelope, reason } of checked) {
    if (reason || !envelope) {
      await moveAside(layout, id, names, logger, reason ?? 'unreadable');
      changed = true;
      continue;
    }
    envelopes.push(envelope);
  }

  for (const name of names) {
    if (!name.endsWith('.eml')) continue;
    const id = name.slice(0, -'.eml'.length);
    if (names.has(`${id}.json`)) continue;
    await removeIfPresent(join(layout.queue, name));
    logger.warn({ queueId: id }, 'spool removed a message file without an envelope (never acknowledged)');
    changed = true;
  }

  if (changed) {
    await fsyncDirectory(layout.queue);
    await fsyncDirectory(layout.tmp);
  }
  return envelopes;
}

/** Files read at once during recovery. */
const RECOVERY_PARALLELISM = 64;

async function readChecked(layout: SpoolLayout, id: string, names: Set<string>): Promise<{ id: string; envelope?: Envelope; reason?: string }> {
  if (!isQueueId(id)) return { id, reason: 'the file name is not a queue ID' };
  try {
    const envelope = parseEnvelope(await readFile(join(layout.queue, `${id}.json`), 'utf8'));
    const reason = await mismatch(layout, id, envelope, names);
    return reason ? { id, reason } : { id, envelope };
  } catch (err) {
    return { id, reason: errorMessage(err) };
  }
}

/** `fn` over `items` with at most `limit` running at once; results in the order of `items`. */
async function mapLimited<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** Why an envelope does not describe the message file next to it, or undefined when it does. */
async function mismatch(layout: SpoolLayout, id: string, envelope: Envelope, names: Set<string>): Promise<string | undefined> {
  if (envelope.id !== id) return `the envelope names message ${envelope.id}`;
  if (!names.has(`${id}.eml`)) return 'the message file is missing';
  const { size } = await stat(join(layout.queue, `${id}.eml`));
  // A truncated message must not go out as if it were whole.
  if (size !== envelope.size) return `the message file has ${size} bytes, the envelope says ${envelope.size}`;
  return undefined;
}

async function moveAside(layout: SpoolLayout, id: string, names: Set<string>, logger: Logger, reason: string): Promise<void> {
  for (const name of [`${id}.json`, `${id}.eml`]) {
    if (!names.has(name)) continue;
    await rename(join(layout.queue, name), join(layout.corrupt, name));
    names.delete(name);
  }
  await fsyncDirectory(layout.corrupt);
  logger.error({ queueId: id, reason, movedTo: layout.corrupt }, 'spool moved an unreadable envelope aside; the message is not delivered');
}
