import { stat } from 'node:fs/promises';
import type { Logger } from '../util/logger.js';
import { errorMessage } from '../util/errors.js';
import { watchFiles, type FileWatcher, type WatchOptions } from '../util/fileWatcher.js';
import { readUsersFile, UsersFileError, type UserRecord } from './usersFile.js';
import { createInitialUsersFile } from './usersFileEdit.js';

/** An authenticated identity as the rest of the gateway sees it: no password hash. */
export interface User {
  name: string;
  /** MAIL FROM addresses and patterns this user may use (see senderPattern.ts). */
  senders: readonly string[];
  groups: readonly string[];
}

export type ReloadOutcome = { ok: true; users: number } | { ok: false; error: UsersFileError };

export interface UserStoreOptions {
  /** Absolute path of the users file. */
  path: string;
  logger: Logger;
  /** Re-read the file when it changes (default true). */
  watch?: boolean;
  watchOptions?: WatchOptions;
  /** On first start, create the file with a `postmaster` user and a random password (default true). */
  createIfMissing?: boolean;
  /**
   * The MAIL FROM addresses or patterns the `postmaster` created on first start may use
   * (default none). Senders are enforced at MAIL FROM, so without any the first user could
   * log in but send nothing.
   */
  initialSenders?: readonly string[];
  /** Called after every reload attempt, whether it came from the watcher or reload(). */
  onReload?: (outcome: ReloadOutcome) => void;
}

/**
 * The users from the users file, kept current: the file is re-read when it changes and on
 * reload(). A reload that finds a broken file keeps the users loaded before, so a typo in an
 * edit never locks everyone out.
 */
export class UserStore {
  private users: ReadonlyMap<string, UserRecord>;
  private watcher: FileWatcher | undefined;

  private constructor(
    private readonly options: UserStoreOptions,
    initial: ReadonlyMap<string, UserRecord>,
  ) {
    this.users = initial;
  }

  /**
   * Load the users file, creating it first when it is missing (unless createIfMissing is
   * false). `createdPassword` is the initial postmaster's password when the file was created
   * now: show it to the operator once; it is stored nowhere else. Throws UsersFileError when
   * the file cannot be read or is invalid.
   */
  static async open(options: UserStoreOptions): Promise<{ store: UserStore; createdPassword?: string }> {
    let createdPassword: string | undefined;
    if ((options.createIfMissing ?? true) && (await isMissing(options.path))) {
      try {
        ({ password: createdPassword } = await createInitialUsersFile(options.path, options.initialSenders));
        // The password is for the caller to show once; it and its hash stay out of this line.
        options.logger.info(
          { file: options.path, user: 'postmaster', senders: options.initialSenders ?? [] },
          'created the users file with the user postmaster',
        );
      } catch (err) {
        // EEXIST: another replica created it meanwhile; use theirs.
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
          throw new UsersFileError(options.path, [{ key: '', reason: `cannot create the file: ${errorMessage(err)}` }]);
        }
      }
    }
    const store = new UserStore(options, readUsersFile(options.path));
    options.logger.info({ file: options.path, users: store.size }, 'users file loaded');
    if (options.watch ?? true) {
      store.watcher = watchFiles([options.path], () => store.reload(), options.watchOptions);
    }
    return createdPassword === undefined ? { store } : { store, createdPassword };
  }

  /**
   * The user called exactly `name` (case-sensitive, as Dovecot and Cyrus SASL compare by
   * default: the file's author decides the spelling) and its password hash.
   */
  find(name: string): { user: User; passwordHash: string } | undefined {
    const record = this.users.get(name);
    if (!record) return undefined;
    return {
      user: { name: record.name, senders: record.senders, groups: record.groups },
      passwordHash: record.passwordHash,
    };
  }

  /**
   * Re-read the file now. Returns false, logs why and keeps the current users when the file
   * cannot be read or is invalid.
   */
  reload(): boolean {
    const { path, logger } = this.options;
    let outcome: ReloadOutcome;
    try {
      this.users = readUsersFile(path);
      outcome = { ok: true, users: this.users.size };
      logger.info({ file: path, users: this.users.size }, 'users file reloaded');
    } catch (err) {
      const error =
        err instanceof UsersFileError ? err : new UsersFileError(path, [{ key: '', reason: errorMessage(err) }]);
      outcome = { ok: false, error };
      logger.error(
        { file: path, line: error.line, reason: error.reason, problems: error.problems.length },
        `users file ${path} is invalid${error.line === undefined ? '' : ` at line ${error.line}`}: ${error.reason}; keeping the ${this.users.size} users loaded before`,
      );
    }
    this.options.onReload?.(outcome);
    return outcome.ok;
  }

  get size(): number {
    return this.users.size;
  }

  /** Stop watching the file. */
  close(): void {
    this.watcher?.close();
    this.watcher = undefined;
  }
}

async function isMissing(path: string): Promise<boolean> {
  try {
    await stat(path);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT';
  }
}
