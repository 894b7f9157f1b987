import { createHash, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { DkimKeyConfig } from '../config/schema.js';
import { errorMessage, PosternError } from '../util/errors.js';
import { watchFiles, type FileWatcher, type WatchOptions } from '../util/fileWatcher.js';
import type { Logger } from '../util/logger.js';
import { publicKeyDnsValue, type DkimAlgorithm } from './dnsRecord.js';

export type { DkimAlgorithm };

/**
 * RFC 8301 section 3.2 requires at least 1024 bits; 2048 is what receivers expect today and
 * what RFC 8301 recommends, and shorter keys are factored cheaply enough to forge mail.
 */
export const MIN_RSA_BITS = 2048;

/** A configured key, read and checked. */
export interface DkimKey {
  readonly domain: string;
  readonly selector: string;
  readonly keyFile: string;
  readonly active: boolean;
  readonly algorithm: DkimAlgorithm;
  /** RSA modulus length; undefined for Ed25519. */
  readonly bits: number | undefined;
  readonly privateKey: KeyObject;
  /** The p= value its DNS record must carry. */
  readonly publicKeyValue: string;
  /** SHA-256 of the public key, for log lines: says which key without showing it. */
  readonly fingerprint: string;
}

/**
 * Reads a PEM private key and checks it can sign DKIM: RSA of at least 2048 bits or Ed25519
 * (RFC 8463). Throws PosternError('CONFIG_INVALID') naming the file and what is wrong.
 */
export function parseDkimPrivateKey(pem: string | Buffer, source: string): { privateKey: KeyObject; algorithm: DkimAlgorithm; bits: number | undefined; publicKeyValue: string } {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: pem, format: 'pem' });
  } catch (err) {
    throw new PosternError('CONFIG_INVALID', `Cannot use DKIM key ${source}: it is not a PEM private key (${errorMessage(err)})`, { cause: err });
  }
  const type = privateKey.asymmetricKeyType;
  if (type !== 'rsa' && type !== 'ed25519') {
    throw new PosternError('CONFIG_INVALID', `Cannot use DKIM key ${source}: it is a ${type ?? 'unknown'} key; DKIM signs with RSA or Ed25519`);
  }
  const bits = type === 'rsa' ? privateKey.asymmetricKeyDetails?.modulusLength : undefined;
  if (type === 'rsa' && (bits === undefined || bits < MIN_RSA_BITS)) {
    throw new PosternError('CONFIG_INVALID', `Cannot use DKIM key ${source}: it is a ${bits ?? 'unknown'}-bit RSA key; at least ${MIN_RSA_BITS} bits are required`);
  }
  return { privateKey, algorithm: type, bits, publicKeyValue: publicKeyDnsValue(createPublicKey(privateKey)) };
}

/** Reads and checks the key file a `dkim.keys` entry names. */
export function readDkimKey(config: DkimKeyConfig): DkimKey {
  let pem: Buffer;
  try {
    pem = readFileSync(config.keyFile);
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : `could not be read (${errorMessage(err)})`;
    throw new PosternError('CONFIG_INVALID', `Cannot read DKIM key for ${config.selector}._domainkey.${config.domain}: ${config.keyFile} ${reason}`, { cause: err });
  }
  const parsed = parseDkimPrivateKey(pem, config.keyFile);
  return {
    domain: config.domain.toLowerCase(),
    selector: config.selector,
    keyFile: config.keyFile,
    active: config.active,
    ...parsed,
    fingerprint: createHash('sha256').update(parsed.publicKeyValue).digest('hex').slice(0, 16),
  };
}

/**
 * Checks a whole set: a selector is named once per domain, and a domain has at most one active
 * key per algorithm (two active RSA keys would leave which one signs to chance; an RSA and an
 * Ed25519 key both active is dual signing, RFC 8463 section 4).
 */
function checkKeySet(keys: readonly DkimKey[]): void {
  const selectors = new Set<string>();
  const active = new Map<string, DkimKey>();
  for (const key of keys) {
    const name = `${key.selector}._domainkey.${key.domain}`;
    if (selectors.has(name)) throw new PosternError('CONFIG_INVALID', `DKIM key ${name} is configured twice`);
    selectors.add(name);
    if (!key.active) continue;
    const slot = `${key.domain}/${key.algorithm}`;
    const other = active.get(slot);
    if (other) {
      throw new PosternError(
        'CONFIG_INVALID',
        `DKIM keys ${other.selector} and ${key.selector} of ${key.domain} are both active ${key.algorithm} keys; mark one active: false`,
      );
    }
    active.set(slot, key);
  }
}

export interface DkimKeyringOptions {
  /** `dkim.keys`, key files absolute. */
  keys: readonly DkimKeyConfig[];
  logger: Logger;
  /** Re-read key files by itself when they change on disk. Default true. */
  watch?: boolean;
  watchOptions?: WatchOptions;
  /** Called after every reload of the key files (watcher or reload()); for metrics and tests. */
  onReload?: (outcome: DkimReloadOutcome) => void;
}

/** ok: every file was read and checked; changed: some key now differs from before. */
export interface DkimReloadOutcome {
  ok: boolean;
  changed: boolean;
}

const ALGORITHM_ORDER: Record<DkimAlgorithm, number> = { rsa: 0, ed25519: 1 };

/**
 * The configured DKIM keys and which of them sign. Loaded at start (failing there on a bad key,
 * as a bad certificate fails the start), then kept current: a replaced key file (an operator's
 * edit, Kubernetes swapping a mounted Secret) is re-read by the watcher and used for the next
 * message; `update()` swaps the configured set when the configuration changes. A key that fails
 * to load never replaces a working one.
 */
export class DkimKeyring {
  private configs: readonly DkimKeyConfig[] = [];
  private all: readonly DkimKey[] = [];
  private activeByDomain = new Map<string, readonly DkimKey[]>();
  private watcher: FileWatcher | undefined;
  private readonly logger: Logger;
  private readonly watch: boolean;
  private readonly watchOptions: WatchOptions | undefined;
  private readonly onReload: ((outcome: DkimReloadOutcome) => void) | undefined;

  constructor(options: DkimKeyringOptions) {
    this.logger = options.logger;
    this.watch = options.watch ?? true;
    this.watchOptions = options.watchOptions;
    this.onReload = options.onReload;
    this.install(options.keys, loadAll(options.keys));
    if (this.all.length > 0) this.logger.info({ active: describeActive(this.all), configured: this.all.length }, 'DKIM keys loaded');
  }

  /** The active keys of exactly this domain (lower-case ASCII), RSA first; empty when none. */
  activeKeys(domain: string): readonly DkimKey[] {
    return this.activeByDomain.get(domain.toLowerCase()) ?? [];
  }

  /** True when this exact domain has an active key. */
  hasActiveKey(domain: string): boolean {
    return this.activeKeys(domain).length > 0;
  }

  /** Every configured key, active or not, as loaded. */
  get keys(): readonly DkimKey[] {
    return this.all;
  }

  /**
   * Replaces the configured set (the configuration file changed). Every key is read and checked
   * first; on any problem this throws PosternError('CONFIG_INVALID') and the running set stays.
   */
  update(keys: readonly DkimKeyConfig[]): void {
    const loaded = loadAll(keys);
    const before = describeActive(this.all);
    this.install(keys, loaded);
    this.logger.info({ before, active: describeActive(loaded) }, 'DKIM keys updated');
  }

  /**
   * Re-reads every key file. A file that cannot be read or checked keeps its previous key (and
   * is logged); a set that would become inconsistent is refused whole. Returns true when a key
   * changed (the others' files may still have failed). Never throws, so it is safe from a watcher or a signal handler.
   */
  reload(): boolean {
    const outcome = this.reloadFiles();
    try {
      this.onReload?.(outcome);
    } catch (err) {
      this.logger.error({ err: errorMessage(err) }, 'DKIM key reload hook failed');
    }
    return outcome.changed;
  }

  /** Stops watching the key files. */
  close(): void {
    this.watcher?.close();
    this.watcher = undefined;
  }

  private reloadFiles(): DkimReloadOutcome {
    let ok = true;
    const next = this.configs.map((config, i) => {
      const previous = this.all[i]!;
      try {
        return readDkimKey(config);
      } catch (err) {
        ok = false;
        this.logger.error(
          { domain: config.domain, selector: config.selector, keyFile: config.keyFile, fingerprint: previous.fingerprint, err: errorMessage(err) },
          'DKIM key reload failed; keeping the current key',
        );
        return previous;
      }
    });
    try {
      checkKeySet(next);
    } catch (err) {
      this.logger.error({ err: errorMessage(err) }, 'DKIM key reload refused; keeping the current keys');
      return { ok: false, changed: false };
    }
    const changed = next.filter((key, i) => key.fingerprint !== this.all[i]!.fingerprint || key.algorithm !== this.all[i]!.algorithm);
    if (changed.length === 0) return { ok, changed: false };
    for (const key of changed) {
      const previous = this.all.find((k) => k.domain === key.domain && k.selector === key.selector);
      this.logger.info(
        { domain: key.domain, selector: key.selector, algorithm: key.algorithm, fingerprint: key.fingerprint, previousFingerprint: previous?.fingerprint },
        'DKIM key reloaded',
      );
    }
    this.all = next;
    this.activeByDomain = indexActive(next);
    return { ok, changed: true };
  }

  private install(configs: readonly DkimKeyConfig[], keys: readonly DkimKey[]): void {
    this.configs = configs.map((config) => ({ ...config }));
    this.all = keys;
    this.activeByDomain = indexActive(keys);
    this.watcher?.close();
    this.watcher = undefined;
    const files = [...new Set(keys.map((key) => key.keyFile))];
    if (this.watch && files.length > 0) this.watcher = watchFiles(files, () => this.reload(), this.watchOptions);
  }
}

function loadAll(configs: readonly DkimKeyConfig[]): DkimKey[] {
  const keys = configs.map(readDkimKey);
  checkKeySet(keys);
  return keys;
}

function indexActive(keys: readonly DkimKey[]): Map<string, readonly DkimKey[]> {
  const index = new Map<string, DkimKey[]>();
  for (const key of keys) {
    if (!key.active) continue;
    const list = index.get(key.domain) ?? [];
    list.push(key);
    index.set(key.domain, list);
  }
  for (const list of index.values()) list.sort((a, b) => ALGORITHM_ORDER[a.algorithm] - ALGORITHM_ORDER[b.algorithm]);
  return index;
}

function describeActive(keys: readonly DkimKey[]): string[] {
  return keys.filter((key) => key.active).map((key) => `${key.selector}._domainkey.${key.domain} (${key.algorithm})`);
}
