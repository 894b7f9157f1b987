import { watch, readdirSync, statSync, type FSWatcher } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

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
  const absolute = paths.map((p) => resolve(p));
  const signature = (): string => absolute.map(signatureOf).join('\n');
  return watchSignature(new Set(absolute.map((p) => dirname(p))), signature, onChange, options);
}

export interface DirectoryWatchOptions extends WatchOptions {
  /** Which entries of the directory count; others (editor swap files, a README) are ignored. */
  filter?: (name: string) => boolean;
}

/**
 * Calls `onChange` when an entry of `dir` that passes `filter` appears, disappears, or changes
 * content or identity (following symlinks, as watchFiles does), and when the directory itself
 * appears or goes away. For a directory of files read as a set, such as the policy files, where
 * adding or removing a file is a change too.
 */
export function watchDirectory(dir: string, onChange: () => void, options: DirectoryWatchOptions = {}): FileWatcher {
  const absolute = resolve(dir);
  const filter = options.filter ?? (() => true);
  const signature = (): string => {
    let names: string[];
    try {
      names = readdirSync(absolute).filter(filter).sort();
    } catch {
      return 'missing';
    }
    return names.map((name) => `${name}=${signatureOf(join(absolute, name))}`).join('\n');
  };
  // The parent too: it sees the directory itself being created, removed or replaced.
  return watchSignature(new Set([absolute, dirname(absolute)]), signature, onChange, options);
}

/** Watches `dirs` for events and polls, calling onChange whenever `signature()` changes. */
function watchSignature(dirs: ReadonlySet<string>, signature: () => string, onChange: () => void, options: WatchOptions): FileWatcher {
  const debounceMs = options.debounceMs ?? 250;
  const pollMs = options.pollMs ?? 10_000;
  let current = signature();
  let timer: NodeJS.Timeout | undefined;

  const check = (): void => {
    timer = undefined;
    const next = signature();
    if (next !== current) {
      current = next;
      onChange();
    }
  };
  const schedule = (): void => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(check, debounceMs);
    timer.unref();
  };

  const watchers: FSWatcher[] = [];
  for (const dir of dirs) {
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
