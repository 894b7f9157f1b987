import { watch, statSync, type FSWatcher } from 'node:fs';
import { dirname, resolve } from 'node:path';

export interface FileWatcher {
  close(): void;
}

export interface WatchOptions {
  /** Coalesce bursts of events (an editor's write + rename, Kubernetes' symlink swap). */
  debounceMs?: number;
  /** Re-check on a timer as well: inotify misses changes on some volume types. */
  pollMs?: number;
}

/**
 * Calls `onChange` when any of `paths` changes content or identity, following symlinks.
 *
 * Kubernetes rotates a mounted Secret by pointing the `..data` symlink at a new directory, so
 * the watched file itself never sees a write event; watching the parent directory and
 * comparing a stat signature of the resolved file catches that, an in-place write, and a
 * replace-by-rename alike.
 */
export function watchFiles(paths: readonly string[], onChange: () => void, options: WatchOptions = {}): FileWatcher {
  const debounceMs = options.debounceMs ?? 250;
  const pollMs = options.pollMs ?? 10_000;
  const absolute = paths.map((p) => resolve(p));
  let signatures = absolute.map(signatureOf);
  let timer: NodeJS.Timeout | undefined;

  const check = (): void => {
    timer = undefined;
    const next = absolute.map(signatureOf);
    if (next.some((sig, i) => sig !== signatures[i])) {
      signatures = next;
      onChange();
    }
  };
  const schedule = (): void => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(check, debounceMs);
    timer.unref();
  };

  const watchers: FSWatcher[] = [];
  for (const dir of new Set(absolute.map((p) => dirname(p)))) {
    try {
      const watcher = watch(dir, { persistent: false }, schedule);
      watcher.on('error', () => undefined); // the poll below still covers this directory
      watchers.push(watcher);
    } catch {
      // The directory may not exist yet; the poll notices when the file appears.
    }
  }
  const poll = setInterval(check, pollMs);
  poll.unref();

  return {
    close() {
      clearInterval(poll);
      if (timer) clearTimeout(timer);
      for (const watcher of watchers) watcher.close();
    },
  };
}

function signatureOf(path: string): string {
  try {
    const stat = statSync(path);
    return `${stat.dev}:${stat.ino}:${stat.size}:${stat.mtimeMs}`;
  } catch {
    return 'missing';
  }
}
