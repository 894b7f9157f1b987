import { existsSync } from 'node:fs';
import { errorMessage } from '../util/errors.js';
import { watchDirectory, type FileWatcher, type WatchOptions } from '../util/fileWatcher.js';
import type { Logger } from '../util/logger.js';
import type { PolicyEngine } from './engine.js';
import { isPolicyFileName, loadPolicySet, type LoadPolicyOptions } from './loader.js';
import { PolicyLoadError } from './policyLoadError.js';

export interface PolicyWatcherOptions extends LoadPolicyOptions {
  /** The policy directory (absolute). */
  dir: string;
  /** Gets each new set once it has loaded whole. */
  engine: PolicyEngine;
  logger: Logger;
  /** Reload when the directory's files change (default true); reload() works either way. */
  watch?: boolean;
  watchOptions?: WatchOptions;
  /** After every reload attempt, from the watcher or reload(); for metrics. */
  onReload?: (result: 'success' | 'failure') => void;
}

/**
 * Keeps the engine's policy current: reloads the directory when its files change and when
 * reload() is called (SIGHUP). A new set replaces the old one only when it loaded whole; a
 * bad file is logged with every problem and the running policy stays.
 */
export class PolicyWatcher {
  private readonly watcher: FileWatcher | undefined;
  private running: Promise<boolean> | undefined;
  private queued: Promise<boolean> | undefined;
  private closed = false;

  constructor(private readonly options: PolicyWatcherOptions) {
    if (options.watch ?? true) {
      this.watcher = watchDirectory(options.dir, () => void this.reload(), { ...options.watchOptions, filter: isPolicyFileName });
    }
  }

  /**
   * Load the directory again and swap it in; resolves true when the new set is in force. While
   * a load runs, further calls share the one load that starts after it, so the last change is
   * always read and loads never overlap.
   */
  reload(): Promise<boolean> {
    if (!this.running) return this.start();
    this.queued ??= this.running.then(() => this.start());
    return this.queued;
  }

  /** Stop watching. A load already running still finishes. */
  close(): void {
    this.closed = true;
    this.watcher?.close();
  }

  private start(): Promise<boolean> {
    this.queued = undefined;
    const run = this.load();
    this.running = run;
    void run.then(() => {
      if (this.running === run) this.running = undefined;
    });
    return run;
  }

  private async load(): Promise<boolean> {
    const { dir, engine, logger, onReload } = this.options;
    let ok: boolean;
    try {
      // At start a missing directory is an empty policy; once one is running, a directory that
      // disappears (an unmounted ConfigMap, a typo in a deploy) must not silently drop every rule.
      if (!existsSync(dir)) throw new Error(`the policy directory ${dir} does not exist`);
      const set = await loadPolicySet(dir, this.options);
      if (this.closed) return false;
      engine.swap(set);
      logger.info({ dir, rules: set.rules.length }, 'policy reloaded');
      ok = true;
    } catch (err) {
      const problems = err instanceof PolicyLoadError ? err.lines : [errorMessage(err)];
      const kept = engine.current.rules.length;
      for (const problem of problems) logger.error({ dir, problem }, `policy not reloaded: ${problem}`);
      logger.error({ dir, problems: problems.length, rules: kept }, `policy not reloaded: ${problems.length} problem(s); keeping the ${kept} rules in force`);
      ok = false;
    }
    try {
      onReload?.(ok ? 'success' : 'failure');
    } catch (err) {
      logger.warn({ err: errorMessage(err) }, 'policy reload hook failed');
    }
    return ok;
  }
}
