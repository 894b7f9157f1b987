import { hostname as osHostname } from 'node:os';
import { z } from 'zod';
import { parseDuration, parseSize } from '../util/units.js';

/**
 * The one configuration schema: every field, its default and a line on what it is for. The
 * names are shared with DESIGN.md, the Helm chart and the tests. Objects are strict, so a
 * misspelt key fails validation with its path instead of being silently ignored.
 */

/** A size written as text ("25MiB") or a number of bytes; parsed to bytes. */
const size = () =>
  z.union([z.string(), z.number()]).transform((value, ctx) => {
    try {
      return parseSize(value);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
      return z.NEVER;
    }
  });

/** A duration written as text ("15m"); parsed to milliseconds. */
const duration = () =>
  z.union([z.string(), z.number()]).transform((value, ctx) => {
    try {
      return parseDuration(value);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
      return z.NEVER;
    }
  });

/** A TCP port; a numeric string is accepted too, since `${VAR}` expansion always yields text. */
const port = () =>
  z
    .union([z.number(), z.string().regex(/^\d+$/, 'expected a port number').transform(Number)])
    .pipe(z.number().int().min(0).max(65535));
const DNS_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

const listener = (defaultPort: number, defaultTls: 'starttls' | 'implicit') =>
  z
    .strictObject({
      /** Set false to not open this listener at all. */
      enabled: z.boolean().default(true),
      host: z.string().min(1).default('0.0.0.0'),
      /** 0 picks a free port (tests); 587/465 are usually mapped in front by the Service. */
      port: port().prefault(defaultPort),
      /** starttls: plaintext greeting, STARTTLS required. implicit: TLS from the first byte. */
      tls: z.enum(['starttls', 'implicit']).default(defaultTls),
    })
    .prefault({});

const smarthost = z.strictObject({
  host: z.string().min(1),
  port: port().prefault(587),
  /** starttls (required, not opportunistic), implicit TLS, or none (trusted networks only). */
  tls: z.enum(['starttls', 'implicit', 'none']).default('starttls'),
  /** Verify the smarthost's certificate against the system CAs (or `ca`). */
  verifyCertificate: z.boolean().default(true),
  /** Extra CA certificate (PEM file) to trust for the smarthost, e.g. an internal CA. */
  ca: z.string().optional(),
  auth: z.strictObject({ user: z.string().min(1), pass: z.string() }).optional(),
});

const route = z.strictObject({
  domains: z.array(z.string().min(1)).min(1),
  smarthost: smarthost.optional(),
});

const dkimKey = z.strictObject({
  domain: z.string().min(1),
  selector: z.string().min(1),
  keyFile: z.string().min(1),
});

export const configSchema = z.strictObject({
  /** The name in the greeting, the EHLO reply and Received headers. */
  hostname: z.string().regex(DNS_NAME, 'must be a DNS host name').default(() => osHostname()),
  listeners: z
    .strictObject({
      submission: listener(2587, 'starttls'),
      submissions: listener(2465, 'implicit'),
    })
    .prefault({}),
  /** /metrics, /healthz, /readyz. */
  http: z
    .strictObject({
      enabled: z.boolean().default(true),
      host: z.string().min(1).default('0.0.0.0'),
      port: port().prefault(9587),
    })
    .prefault({}),
  tls: z
    .strictObject({
      /** PEM certificate chain. Watched: a replaced file is used by new connections. */
      cert: z.string().min(1).default('certs/tls.crt'),
      /** PEM private key. */
      key: z.string().min(1).default('certs/tls.key'),
      /** Generate a self-signed certificate when both files are missing. */
      selfSigned: z.boolean().default(true),
      minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
    })
    .prefault({}),
  auth: z
    .strictObject({
      /** Users, password hashes and allowed senders. Re-read when it changes. */
      usersFile: z.string().min(1).default('users.yaml'),
      /**
       * How long a successful login is remembered, so the same user and password skip the scrypt
       * work on the next AUTH (Dovecot's auth_cache). Failures are never cached. 0 turns it off.
       */
      cacheTtl: duration().prefault('15m'),
      /**
       * The least time before a failed or locked-out AUTH is answered, counted from when the
       * attempt began (Dovecot's auth_failure_delay), plus up to 10% at random. It hides whether
       * the name or the password was wrong, which the hash work alone would show. 0 turns it off.
       */
      failureDelay: duration().prefault('2s'),
      /** Failed logins per client IP and per user name before AUTH answers 454 for a while. */
      lockout: z
        .strictObject({
          failures: z.number().int().min(1).default(5),
          window: duration().prefault('15m'),
          duration: duration().prefault('15m'),
        })
        .prefault({}),
    })
    .prefault({}),
  limits: z
    .strictObject({
      maxMessageSize: size().prefault('25MiB'),
      maxRecipients: z.number().int().min(1).default(100),
      maxConnections: z.number().int().min(1).default(1000),
      maxConnectionsPerIp: z.number().int().min(1).default(20),
      /** From connecting to TLS being up (STARTTLS and its handshake, or the implicit handshake). */
      tlsTimeout: duration().prefault('30s'),
      /** A session with no command for this long is closed (421), as Postfix's smtpd_timeout. */
      idleTimeout: duration().prefault('5m'),
      /** The whole DATA phase of one message must finish within this time. */
      dataTimeout: duration().prefault('10m'),
    })
    .prefault({}),
  received: z
    .strictObject({
      /** Name the authenticated user in the Received header (Postfix: smtpd_sasl_authenticated_header). */
      includeAuthUser: z.boolean().default(false),
    })
    .prefault({}),
  spool: z.strictObject({ dir: z.string().min(1).default('data/spool') }).prefault({}),
  delivery: z
    .strictObject({
      /** Only smarthost relaying exists today; direct MX delivery comes with the delivery engine. */
      mode: z.literal('smarthost').default('smarthost'),
      smarthost: smarthost.optional(),
      routes: z.array(route).max(0, 'per-domain routes are not supported yet').default([]),
      /** Messages being delivered at once. */
      concurrency: z.number().int().min(1).max(1000).default(8),
      retry: z
        .strictObject({
          /** Waits after the 1st, 2nd, ... failed attempt; the last one repeats. */
          schedule: z.array(duration()).min(1).prefault(['1m', '5m', '15m', '30m', '1h', '2h', '4h']),
          /** A message still undelivered this long after it was accepted has failed. */
          maxAge: duration().prefault('5d'),
        })
        .prefault({}),
    })
    .prefault({})
    .superRefine((delivery, ctx) => {
      if (delivery.mode === 'smarthost' && !delivery.smarthost) {
        ctx.addIssue({ code: 'custom', path: ['smarthost'], message: 'is required when delivery.mode is smarthost' });
      }
    }),
  rateLimit: z
    .strictObject({
      store: z.enum(['memory', 'redis']).default('memory'),
      url: z.string().url().optional(),
    })
    .prefault({})
    .superRefine((rateLimit, ctx) => {
      if (rateLimit.store === 'redis' && !rateLimit.url) {
        ctx.addIssue({ code: 'custom', path: ['url'], message: 'is required when rateLimit.store is redis' });
      }
    }),
  policies: z.strictObject({ dir: z.string().min(1).default('policies') }).prefault({}),
  dkim: z
    .strictObject({ keys: z.array(dkimKey).max(0, 'DKIM signing is not supported yet').default([]) })
    .prefault({}),
  shutdown: z
    .strictObject({
      /** On SIGTERM, open sessions get this long to finish before they are closed with 421. */
      gracePeriod: duration().prefault('30s'),
      /**
       * On SIGTERM, /readyz says 503 for this long before the listeners stop accepting, so a
       * load balancer (a Kubernetes Service) stops sending new connections first. 5s is a good
       * value behind a Service; 0 stops at once.
       */
      readinessDelay: duration().prefault('0s'),
    })
    .prefault({}),
  log: z
    .strictObject({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') })
    .prefault({}),
});

export type Config = z.output<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
export type ListenerName = keyof Config['listeners'];
export type ListenerConfig = Config['listeners'][ListenerName];
export type SmarthostConfig = z.output<typeof smarthost>;
