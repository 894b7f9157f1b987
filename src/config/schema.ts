import { hostname as osHostname } from 'node:os';
import { z } from 'zod';
import { parseServerAddress } from '../dns/serverAddress.js';
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

/** A next hop reached by name: the smarthost, or a fixed relay host a route names. */
const relayHost = (defaultPort: number, defaultTls: 'starttls' | 'opportunistic') =>
  z.strictObject({
    host: z.string().min(1),
    port: port().prefault(defaultPort),
    /**
     * starttls: the upgrade is required, never plaintext. implicit: TLS from the first byte.
     * opportunistic: STARTTLS when offered, plaintext otherwise (internal servers without TLS).
     * none: plaintext (trusted networks only).
     */
    tls: z.enum(['starttls', 'implicit', 'opportunistic', 'none']).default(defaultTls),
    /** Verify the host's certificate against the system CAs (or `ca`). */
    verifyCertificate: z.boolean().default(true),
    /** Extra CA certificate (PEM file) to trust for this host, e.g. an internal CA. */
    ca: z.string().optional(),
    auth: z.strictObject({ user: z.string().min(1), pass: z.string() }).optional(),
    /** Giving up on a host that does not answer the TCP connection (Postfix smtp_connect_timeout). */
    connectTimeout: duration().prefault('30s'),
    /** Giving up on a host that took the connection but sends no greeting, or stalls STARTTLS (Postfix smtp_helo_timeout; RFC 5321 §4.5.3.2.1). */
    greetingTimeout: duration().prefault('5m'),
  });

const smarthost = relayHost(587, 'starttls');

/**
 * A domain a route matches: `example.com` exactly, or `*.example.com` for any name below it
 * (not example.com itself; list both for both). Compared case-insensitively, as A-labels.
 */
const routeDomain = z
  .string()
  .regex(/^(\*\.)?[^\s@*]+$/, 'must be a domain, or *. followed by a domain')
  .transform((domain) => domain.toLowerCase().replace(/\.$/, ''));

/** TLS toward MX hosts: opportunistic (Postfix "may") or required ("encrypt"). */
const mxTls = z.enum(['opportunistic', 'require']);

const route = z
  .strictObject({
    domains: z.array(routeDomain).min(1),
    /** smarthost: delivery.smarthost. mx: direct by MX. relay: the host given in `relay`. */
    via: z.enum(['smarthost', 'mx', 'relay']),
    /** The fixed next hop for `via: relay`, e.g. the internal mail server. */
    relay: relayHost(25, 'starttls').optional(),
    /** For `via: mx`: TLS toward this route's MX hosts, instead of delivery.mx.tls. */
    tls: mxTls.optional(),
    /** For `via: mx`: verify MX certificates (name and chain), instead of delivery.mx.verifyCertificate. */
    verifyCertificate: z.boolean().optional(),
  })
  .superRefine((r, ctx) => {
    if (r.via === 'relay' && !r.relay) ctx.addIssue({ code: 'custom', path: ['relay'], message: 'is required when via is relay' });
    if (r.via !== 'relay' && r.relay) ctx.addIssue({ code: 'custom', path: ['relay'], message: 'is only for via: relay' });
    if (r.via !== 'mx' && (r.tls !== undefined || r.verifyCertificate !== undefined)) {
      ctx.addIssue({ code: 'custom', path: ['tls'], message: 'tls and verifyCertificate are only for via: mx; a relay has its own' });
    }
  });

const dkimKey = z.strictObject({
  /** The signing domain (d=): the From domain, or a parent of it for relaxed alignment (RFC 7489). */
  domain: z
    .string()
    .regex(DNS_NAME, 'must be a domain name')
    .transform((domain) => domain.toLowerCase()),
  /** The selector (s=): the key's DNS record is SELECTOR._domainkey.DOMAIN. */
  selector: z.string().regex(/^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/, 'must be a DNS label (or dotted labels)'),
  /** PEM private key, RSA (2048 bits or more) or Ed25519 (RFC 8463); the algorithm follows the key. Watched: a replaced file is used for the next message. */
  keyFile: z.string().min(1),
  /**
   * Sign with this key. One active key per domain and algorithm (an RSA and an Ed25519 key
   * both active is dual signing); an inactive key stays listed while its DNS record is retired.
   */
  active: z.boolean().default(true),
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
      /**
       * A message that arrives with this many Received: header fields or more is refused with
       * 554 5.4.6, as a mail loop (RFC 5321 §6.3; Postfix's hopcount_limit, also 50).
       */
      maxReceivedHeaders: z.number().int().min(1).default(50),
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
      /**
       * The next hop of every domain no route names: mx (direct) or smarthost. Unset: smarthost
       * when one is configured, else mx, so a configuration naming a smarthost never starts
       * delivering directly by surprise.
       */
      mode: z.enum(['mx', 'smarthost']).optional(),
      smarthost: smarthost.optional(),
      /** Per-domain next hops, e.g. the organisation's own domains to its internal server. */
      routes: z.array(route).default([]),
      mx: z
        .strictObject({
          /** Port of MX hosts: 25, except to test against servers on loopback. */
          port: port().prefault(25),
          /** opportunistic: STARTTLS when offered, unverified, plaintext otherwise (RFC 3207, Postfix "may"). */
          tls: mxTls.default('opportunistic'),
          /** Verify MX certificates; with tls: require this is Postfix's "secure". */
          verifyCertificate: z.boolean().default(false),
          /** Extra CA certificates (PEM file) to trust besides the system's, for MX hosts and MTA-STS. */
          ca: z.string().optional(),
          /** Connections open to one destination domain at once (Postfix default_destination_concurrency_limit). */
          maxConnectionsPerDomain: z.number().int().min(1).max(100).default(10),
          /** Giving up on a host that does not answer the TCP connection (Postfix smtp_connect_timeout). */
          connectTimeout: duration().prefault('30s'),
          /** Giving up on a host that took the connection but sends no greeting, or stalls STARTTLS (Postfix smtp_helo_timeout; RFC 5321 §4.5.3.2.1). */
          greetingTimeout: duration().prefault('5m'),
          mtaSts: z
            .strictObject({
              /** Honour recipient domains' MTA-STS policies (RFC 8461). */
              enabled: z.boolean().default(true),
              /** Port of policy hosts' HTTPS servers: 443, except in tests. */
              httpsPort: port().prefault(443),
            })
            .prefault({}),
        })
        .prefault({}),
      /** Messages being delivered at once. */
      concurrency: z.number().int().min(1).max(1000).default(8),
      retry: z
        .strictObject({
          /** Waits after the 1st, 2nd, ... failed attempt; the last one repeats. */
          schedule: z.array(duration()).min(1).prefault(['1m', '5m', '15m', '30m', '1h', '2h', '4h']),
          /** A message still undelivered this long after it was accepted has failed. */
          maxAge: duration().prefault('5d'),
          /** Each wait varies at random by up to this fraction either way, so deferred messages do not return in a burst. */
          jitter: z.number().min(0).max(0.5).default(0.1),
        })
        .prefault({}),
      /**
       * Tell the sender once when a message is still undelivered this long after it was
       * accepted (Postfix delay_warning_time); 0 sends no warning.
       */
      delayWarning: duration().prefault('0s'),
    })
    .prefault({})
    .transform((delivery) => ({ ...delivery, mode: delivery.mode ?? (delivery.smarthost ? ('smarthost' as const) : ('mx' as const)) }))
    .superRefine((delivery, ctx) => {
      const needsSmarthost = delivery.mode === 'smarthost' || delivery.routes.some((r) => r.via === 'smarthost');
      if (needsSmarthost && !delivery.smarthost) {
        ctx.addIssue({ code: 'custom', path: ['smarthost'], message: 'is required when delivery.mode or a route is smarthost' });
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
  dns: z
    .strictObject({
      /** DNS servers ("10.0.0.53", "127.0.0.1:5353") for delivery (MX, MTA-STS) and rules (SPF, DKIM, DMARC); empty: the system's. */
      servers: z
        .array(
          z.string().refine(
            (server) => {
              try {
                parseServerAddress(server);
                return true;
              } catch {
                return false;
              }
            },
            { message: 'must be an IP address, optionally with a port: 10.0.0.53, 127.0.0.1:5353, [::1]:53' },
          ),
        )
        .default([]),
      /** How long one query waits for an answer before it is asked again (the resolver default RES_TIMEOUT). */
      timeout: duration().prefault('5s'),
      /** How many times each server is asked before the lookup fails as temporary (the resolver default attempts:2). */
      tries: z.number().int().min(1).max(5).default(2),
    })
    .prefault({}),
  dkim: z
    .strictObject({ keys: z.array(dkimKey).default([]) })
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
export type RelayConfig = SmarthostConfig;
export type RouteConfig = z.output<typeof route>;
export type DeliveryConfig = Config['delivery'];
export type DkimKeyConfig = z.output<typeof dkimKey>;
