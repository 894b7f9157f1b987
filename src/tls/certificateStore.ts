import { existsSync } from 'node:fs';
import { systemClock, type Clock } from '../util/clock.js';
import { PosternError } from '../util/errors.js';
import { watchFiles, type FileWatcher, type WatchOptions } from '../util/fileWatcher.js';
import type { Logger } from '../util/logger.js';
import type { CertificateInfo } from './certificateInfo.js';
import { writeSelfSigned } from './selfSigned.js';
import { readTlsMaterial, type LoadedTlsMaterial, type TlsMaterial } from './tlsMaterial.js';

export interface CertificateStoreOptions {
  /** Absolute path of the PEM certificate (chain); `tls.cert`. */
  certPath: string;
  /** Absolute path of the PEM private key; `tls.key`. */
  keyPath: string;
  /** Generate a self-signed pair when both files are missing; `tls.selfSigned`. */
  selfSigned: boolean;
  /** Names the generated certificate; `hostname`. */
  hostname: string;
  logger: Logger;
  /** Reload by itself when either file changes on disk. Default true. */
  watch?: boolean;
  watchOptions?: WatchOptions;
  /** When "now" is, for the generated certificate's validity and the expiry warnings. */
  clock?: Clock;
  /**
   * Called after every reload attempt, from the watcher or reload(): ok with whether the
   * material changed, or not ok when the files could not be read or validated. For metrics.
   */
  onReload?: (outcome: CertificateReloadOutcome) => void;
}

export type CertificateReloadOutcome = { ok: true; changed: boolean } | { ok: false };

export type TlsMaterialListener = (material: TlsMaterial, info: CertificateInfo) => void;

/**
 * The server's current certificate and key. Opened once at start (failing there on bad
 * material), then kept current: a change on disk (an operator replacing the files, or
 * Kubernetes swapping a mounted Secret's `..data` symlink) or a call to `reload()` (SIGHUP)
 * re-reads the pair, and listeners hand it to the TLS listeners, so new connections use it
 * while open ones keep the session they negotiated. Material that fails validation never
 * replaces working material.
 */
export class CertificateStore {
  private current: LoadedTlsMaterial;
  private readonly listeners = new Set<TlsMaterialListener>();
  private watcher: FileWatcher | undefined;

  private constructor(
    private readonly certPath: string,
    private readonly keyPath: string,
    private readonly logger: Logger,
    private readonly clock: Clock,
    loaded: LoadedTlsMaterial,
    private readonly onReload: ((outcome: CertificateReloadOutcome) => void) | undefined,
  ) {
    this.current = loaded;
  }

  /**
   * Generates a self-signed pair if allowed and both files are missing, then loads and
   * validates the pair. Throws PosternError('TLS_MATERIAL_INVALID') naming the file at fault.
   */
  static async open(opts: CertificateStoreOptions): Promise<CertificateStore> {
    const clock = opts.clock ?? systemClock;
    const logger = opts.logger;
    const generated = await generateIfAllowed(opts, clock);
    const store = new CertificateStore(opts.certPath, opts.keyPath, logger, clock, readTlsMaterial(opts.certPath, opts.keyPath), opts.onReload);
    const { info } = store.current;
    logger.info(
      { fingerprint256: info.fingerprint256, subject: info.subject, altNames: info.altNames, notAfter: info.notAfter, generated },
      'TLS certificate loaded',
    );
    store.warnIfOutsideValidity();
    if (opts.watch ?? true) {
      store.watcher = watchFiles([opts.certPath, opts.keyPath], () => store.reload(), opts.watchOptions);
    }
    return store;
  }

  /** The PEMs new connections should use. */
  get material(): TlsMaterial {
    return this.current.material;
  }

  get info(): CertificateInfo {
    return this.current.info;
  }

  /**
   * Re-reads both files. Returns true when valid, different material replaced the current
   * one (and listeners were called); false when the files hold the same material, or when
   * they could not be read or validated, in which case the current material stays and the
   * error is logged. Never throws, so it is safe to call from a signal handler.
   */
  reload(): boolean {
    const outcome = this.reloadFiles();
    try {
      this.onReload?.(outcome);
    } catch (err) {
      this.logger.error({ err }, 'TLS certificate reload hook failed');
    }
    return outcome.ok && outcome.changed;
  }

  private reloadFiles(): CertificateReloadOutcome {
    let next: LoadedTlsMaterial;
    try {
      next = readTlsMaterial(this.certPath, this.keyPath);
    } catch (err) {
      this.logger.error(
        { err, certPath: this.certPath, keyPath: this.keyPath, fingerprint256: this.current.info.fingerprint256 },
        'TLS certificate reload failed; keeping the current certificate',
      );
      return { ok: false };
    }
    const before = this.current;
    if (next.material.cert.equals(before.material.cert) && next.material.key.equals(before.material.key)) return { ok: true, changed: false };

    this.current = next;
    this.logger.info(
      {
        fingerprint256: next.info.fingerprint256,
        previousFingerprint256: before.info.fingerprint256,
        subject: next.info.subject,
        notAfter: next.info.notAfter,
      },
      'TLS certificate reloaded',
    );
    this.warnIfOutsideValidity();
    for (const listener of this.listeners) {
      try {
        listener(next.material, next.info);
      } catch (err) {
        // One failing consumer (say, a listener that is shutting down) must not keep the
        // new certificate from the others.
        this.logger.error({ err, fingerprint256: next.info.fingerprint256 }, 'Applying the reloaded TLS certificate failed');
      }
    }
    return { ok: true, changed: true };
  }

  /** Calls `listener` after every reload that changed the material. Returns a function that unsubscribes. */
  onChange(listener: TlsMaterialListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Stops watching the files. `reload()` still works. */
  close(): void {
    this.watcher?.close();
    this.watcher = undefined;
  }

  /** An expired certificate still serves (refusing to start helps nobody) but must be noticed. */
  private warnIfOutsideValidity(): void {
    const { info } = this.current;
    const now = this.clock.now();
    if (info.notAfter.getTime() <= now) {
      this.logger.warn({ fingerprint256: info.fingerprint256, notAfter: info.notAfter }, 'TLS certificate has expired');
    } else if (info.notBefore.getTime() > now) {
      this.logger.warn({ fingerprint256: info.fingerprint256, notBefore: info.notBefore }, 'TLS certificate is not valid yet');
    }
  }
}

/**
 * A pair is generated only when BOTH files are missing: one file without the other is a
 * broken deployment (a Secret with a missing key, a half-finished copy), and replacing the
 * half that exists would hide that.
 */
async function generateIfAllowed(opts: CertificateStoreOptions, clock: Clock): Promise<boolean> {
  const certExists = existsSync(opts.certPath);
  const keyExists = existsSync(opts.keyPath);
  if (certExists && keyExists) return false;
  if (certExists) {
    throw new PosternError(
      'TLS_MATERIAL_INVALID',
      `Cannot read TLS key: ${opts.keyPath} does not exist (the certificate ${opts.certPath} does; ` +
        'a self-signed pair is only generated when both are missing)',
    );
  }
  if (keyExists) {
    throw new PosternError(
      'TLS_MATERIAL_INVALID',
      `Cannot read TLS certificate: ${opts.certPath} does not exist (the key ${opts.keyPath} does; ` +
        'a self-signed pair is only generated when both are missing)',
    );
  }
  if (!opts.selfSigned) {
    throw new PosternError(
      'TLS_MATERIAL_INVALID',
      `Cannot read TLS certificate: ${opts.certPath} does not exist, nor does the key ${opts.keyPath} ` +
        '(provide both, or set tls.selfSigned: true to generate a self-signed pair)',
    );
  }
  const info = await writeSelfSigned(opts.certPath, opts.keyPath, { hostname: opts.hostname, now: new Date(clock.now()) });
  opts.logger.warn(
    {
      fingerprint256: info.fingerprint256,
      altNames: info.altNames,
      notAfter: info.notAfter,
      certPath: opts.certPath,
      keyPath: opts.keyPath,
    },
    'Generated a self-signed TLS certificate; clients that verify certificates will not trust it',
  );
  return true;
}
