import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { PosternError } from '../util/errors.js';
import { configSchema, type Config } from './schema.js';

export interface LoadedConfig {
  /** Validated, paths made absolute, frozen. */
  config: Config;
  /** The absolute path the configuration was read from. */
  path: string;
}

/** A configuration that failed to load: one line per problem, each naming the key. */
export class ConfigError extends PosternError {
  constructor(
    readonly file: string,
    readonly problems: readonly string[],
  ) {
    super('CONFIG_INVALID', `Invalid configuration in ${file}:\n  ${problems.join('\n  ')}`);
  }
}

/** Where the configuration comes from: --config, else POSTERN_CONFIG, else ./postern.yaml. */
export function configPath(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return resolve(flag ?? env.POSTERN_CONFIG ?? 'postern.yaml');
}

/** Read, expand `${VAR}`, parse, validate, resolve paths, freeze. Throws ConfigError. */
export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const path = resolve(file);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'the file does not exist' : (err as Error).message;
    throw new ConfigError(path, [`cannot read configuration: ${reason}`]);
  }
  return { config: parseConfig(text, path, env), path };
}

/** Validate configuration text; `path` names it in errors and anchors relative paths. */
export function parseConfig(text: string, path: string, env: NodeJS.ProcessEnv = process.env): Config {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      path,
      doc.errors.map((e) => {
        const at = e.linePos?.[0];
        return `${at ? `line ${at.line}, column ${at.col}: ` : ''}${e.message.split('\n')[0]}`;
      }),
    );
  }
  let raw: unknown;
  try {
    // toJS() throws (ReferenceError) for an alias with no anchor and for alias bombs past
    // yaml's maxAliasCount: both are mistakes in the file, so they are reported as such.
    raw = doc.toJS() ?? {};
  } catch (err) {
    throw new ConfigError(path, [(err as Error).message]);
  }
  const problems: string[] = [];
  const expanded = expandEnv(raw, env, [], problems);
  if (problems.length > 0) throw new ConfigError(path, problems);

  const result = configSchema.safeParse(expanded);
  if (!result.success) throw new ConfigError(path, result.error.issues.map(describeIssue));
  return deepFreeze(resolvePaths(result.data, dirname(path)));
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const at = issue.path.map(String).join('.');
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => `${at ? `${at}.` : ''}${key}: unknown key`).join('\n  ');
  }
  return `${at || '(top level)'}: ${issue.message}`;
}

/**
 * `${VAR}` and `${VAR:-default}` in string values, from the environment; `$${` writes a
 * literal `${`. Values are expanded after YAML parsing so a variable can never inject YAML.
 */
function expandEnv(value: unknown, env: NodeJS.ProcessEnv, path: string[], problems: string[]): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (whole, escaped: string, name: string, fallback?: string) => {
      if (escaped) return whole.slice(1);
      const found = env[name];
      if (found !== undefined && found !== '') return found;
      if (fallback !== undefined) return fallback;
      problems.push(`${path.join('.') || '(top level)'}: environment variable ${name} is not set`);
      return '';
    });
  }
  if (Array.isArray(value)) return value.map((item, i) => expandEnv(item, env, [...path, String(i)], problems));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [key, expandEnv(item, env, [...path, key], problems)]),
    );
  }
  return value;
}

/** Relative paths in the configuration are relative to the configuration file's directory. */
function resolvePaths(config: Config, base: string): Config {
  const at = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  return {
    ...config,
    tls: { ...config.tls, cert: at(config.tls.cert), key: at(config.tls.key) },
    auth: { ...config.auth, usersFile: at(config.auth.usersFile) },
    spool: { ...config.spool, dir: at(config.spool.dir) },
    policies: { ...config.policies, dir: at(config.policies.dir) },
    delivery: {
      ...config.delivery,
      smarthost: config.delivery.smarthost && withCa(config.delivery.smarthost, at),
      mx: withCa(config.delivery.mx, at),
      routes: config.delivery.routes.map((route) => (route.relay ? { ...route, relay: withCa(route.relay, at) } : route)),
    },
    dkim: { ...config.dkim, keys: config.dkim.keys.map((k) => ({ ...k, keyFile: at(k.keyFile) })) },
  };
}

function withCa<T extends { ca?: string | undefined }>(settings: T, at: (p: string) => string): T {
  return settings.ca ? { ...settings, ca: at(settings.ca) } : settings;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const item of Object.values(value)) deepFreeze(item);
  }
  return value;
}
