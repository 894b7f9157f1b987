import type { Logger } from '../util/logger.js';
import { errorMessage } from '../util/errors.js';
import { watchFiles, type FileWatcher } from '../util/fileWatcher.js';
import { loadConfig } from './load.js';
import type { Config } from './schema.js';

/** The parts of the configuration applied while running; every other change waits for a restart. */
export interface LiveSettings {
  /** Called with the new configuration when any of `sections` changed. */
  apply(config: Config): void;
  /** Top-level sections (or `section.key` paths) this applies. */
  sections: readonly string[];
}

export interface ConfigWatcherOptions {
  file: string;
  /** The configuration the gateway started with. */
  initial: Config;
  live: readonly LiveSettings[];
  logger: Logger;
  onReload?: (result: 'success' | 'failure') => void;
  env?: NodeJS.ProcessEnv;
}

/**
 * Re-reads the configuration file when it changes (an edit, a Kubernetes ConfigMap's symlink
 * swap) and applies what can change while running, such as the DKIM keys; a file that no
 * longer validates is refused and the running configuration stays, as for the policy. A
 * changed setting that only a restart applies is named in the log, so nobody believes it
 * took effect.
 */
export class ConfigWatcher {
  private current: Config;
  private readonly watcher: FileWatcher;

  constructor(private readonly options: ConfigWatcherOptions) {
    this.current = options.initial;
    this.watcher = watchFiles([options.file], () => this.reload());
  }

  /** Re-read now (SIGHUP, or the file changed). */
  reload(): void {
    const { logger, file } = this.options;
    let next: Config;
    try {
      next = loadConfig(file, this.options.env).config;
    } catch (err) {
      logger.error({ file, err: errorMessage(err) }, 'configuration change refused; the running configuration stays');
      this.options.onReload?.('failure');
      return;
    }
    const changed = changedPaths(this.current, next);
    if (changed.length === 0) return;
    const applied = new Set<string>();
    for (const live of this.options.live) {
      const touched = changed.filter((path) => live.sections.some((section) => path === section || path.startsWith(`${section}.`)));
      if (touched.length === 0) continue;
      try {
        live.apply(next);
        for (const path of touched) applied.add(path);
      } catch (err) {
        logger.error({ file, settings: touched, err: errorMessage(err) }, 'cannot apply a configuration change; the running settings stay');
        this.options.onReload?.('failure');
        return;
      }
    }
    const needRestart = changed.filter((path) => !applied.has(path));
    this.current = next;
    this.options.onReload?.('success');
    logger.info({ file, applied: [...applied] }, 'configuration reloaded');
    if (needRestart.length > 0) logger.warn({ file, settings: needRestart }, 'these configuration changes take effect at the next restart');
  }

  close(): void {
    this.watcher.close();
  }
}

/** Second-level paths ("delivery.routes", "dkim.keys") whose values differ. */
export function changedPaths(a: Config, b: Config): string[] {
  const paths: string[] = [];
  const sections = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const section of sections) {
    const left = (a as Record<string, unknown>)[section];
    const right = (b as Record<string, unknown>)[section];
    if (isPlainObject(left) && isPlainObject(right)) {
      for (const key of new Set([...Object.keys(left), ...Object.keys(right)])) {
        if (JSON.stringify(left[key]) !== JSON.stringify(right[key])) paths.push(`${section}.${key}`);
      }
    } else if (JSON.stringify(left) !== JSON.stringify(right)) {
      paths.push(section);
    }
  }
  return paths;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
