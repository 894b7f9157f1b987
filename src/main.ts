// First, so every pattern the process runs has the backtracking limit (see the module).
import './util/regexpBacktrackLimit.js';
import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { ConfigWatcher, type LiveSettings } from './config/configWatcher.js';
import type { Config, ListenerName } from './config/schema.js';
import { Authenticator } from './auth/authenticator.js';
import { startControlServer } from './control/controlServer.js';
import { controlSocketPath } from './control/controlSocketPath.js';
import { removeGatewayPid, writeGatewayPid } from './control/gatewayPidFile.js';
import { PendingQueueControl } from './control/pendingQueueControl.js';
import { LoginLockout } from './auth/lockout.js';
import { UserStore } from './auth/userStore.js';
import { VerifiedLoginCache } from './auth/verifiedLoginCache.js';
import { DeliveryQueue } from './delivery/deliveryQueue.js';
import { DkimKeyring } from './dkim/dkimKeys.js';
import { DkimSigner } from './dkim/dkimSigner.js';
import { MtaStsResolver } from './delivery/mtaSts.js';
import { RoutedTransport } from './delivery/routedTransport.js';
import { SenderNotifier } from './delivery/senderNotifier.js';
import { createResolver } from './dns/resolver.js';
import { startHttpEndpoints, type HttpEndpoints } from './http/httpServer.js';
import { Readiness } from './http/readiness.js';
import { deliveryAttemptCounter } from './metrics/deliveryMetrics.js';
import { createMetrics, type Metrics } from './metrics/metrics.js';
import { SmtpMetrics } from './metrics/smtpMetrics.js';
import { PolicyEngine } from './policy/engine.js';
import { createLimiterStore } from './policy/limiterStore.js';
import { loadPolicySet } from './policy/loader.js';
import { PolicyWatcher } from './policy/policyWatcher.js';
import type { RuleDeps } from './policy/types.js';
import { BUILTIN_RULE_TYPES } from './rules/index.js';
import { startSubmissionListeners } from './smtp/submissionServer.js';
import { Spool } from './spool/spool.js';
import { readCaFile } from './tls/caFile.js';
import { CertificateStore } from './tls/certificateStore.js';
import { systemClock, type Clock } from './util/clock.js';
import { errorMessage } from './util/errors.js';
import type { Logger } from './util/logger.js';

/**
 * The composition root: builds every dependency from the validated configuration, wires them
 * together and owns the order of start and stop. Nothing else constructs long-lived objects.
 */
export interface GatewayDeps {
  logger: Logger;
  clock?: Clock;
  /** A registry of its own per gateway; tests running several gateways in one process pass none. */
  metrics?: Metrics;
  /** The file `config` came from: watched, and what can change while running is applied. */
  configFile?: string;
}

export interface Gateway {
  /** Bound addresses of the SMTP listeners (a configured port 0 becomes a real one). */
  readonly addresses: Partial<Record<ListenerName, AddressInfo>>;
  /** Where /metrics, /healthz and /readyz answer, when http.enabled. */
  readonly httpAddress?: AddressInfo;
  readonly metrics: Metrics;
  /** Re-read what may change without a restart: users, certificate and policy (SIGHUP). */
  reload(): void;
  /**
   * Graceful stop: listeners stop accepting, open sessions get `shutdown.gracePeriod` to
   * finish, delivery workers finish what they are sending, then everything is closed.
   */
  stop(): Promise<void>;
}

export async function startGateway(config: Config, deps: GatewayDeps): Promise<Gateway> {
  const { logger } = deps;
  const clock = deps.clock ?? systemClock;
  const closers: Array<() => Promise<void> | void> = [];
  const closeAll = async () => {
    for (const close of closers.reverse()) {
      try {
        await close();
      } catch (err) {
        logger.warn({ err: errorMessage(err) }, 'error while stopping');
      }
    }
  };

  const metrics = deps.metrics ?? createMetrics();
  let readiness: Readiness | undefined;
  try {
    const certificates = await CertificateStore.open({
      certPath: config.tls.cert,
      keyPath: config.tls.key,
      selfSigned: config.tls.selfSigned,
      hostname: config.hostname,
      logger: logger.child({ component: 'tls' }),
      onReload: (outcome) => metrics.reloads.inc({ what: 'certificate', result: outcome.ok ? 'success' : 'failure' }),
    });
    closers.push(() => certificates.close());
    const showNotAfter = (notAfter: Date) => metrics.certificateNotAfter.set(notAfter.getTime() / 1000);
    showNotAfter(certificates.info.notAfter);
    certificates.onChange((_material, info) => showNotAfter(info.notAfter));

    const { store: users, createdPassword } = await UserStore.open({
      path: config.auth.usersFile,
      logger: logger.child({ component: 'auth' }),
      createIfMissing: true,
      // The first user can send as postmaster at this host, and nothing else until told to.
      initialSenders: [`postmaster@${config.hostname}`],
      onReload: (outcome) => metrics.reloads.inc({ what: 'users', result: outcome.ok ? 'success' : 'failure' }),
    });
    closers.push(() => users.close());
    if (createdPassword !== undefined) {
      // Printed once, on the first start only: there is no default password to guess.
      logger.warn(
        { usersFile: config.auth.usersFile, user: 'postmaster', initialPassword: createdPassword },
        'created the users file with one user, postmaster, and the random password shown here; ' +
          'add users with `postern user add NAME`',
      );
    }

    let redis: Redis | undefined;
    if (config.rateLimit.store === 'redis' && config.rateLimit.url) {
      // A Redis that stops answering without closing the connection must fail fast, so rate
      // limits fall back to memory instead of every message waiting on a rule timeout.
      redis = new Redis(config.rateLimit.url, {
        lazyConnect: false,
        maxRetriesPerRequest: 1,
        enableOfflineQueue: false,
        commandTimeout: 500,
        keepAlive: 10_000,
      });
      redis.on('error', (err: Error) => logger.warn({ component: 'redis', err: err.message }, 'redis connection problem'));
      const client = redis;
      closers.push(() => void client.disconnect());
    }
    const lockout = new LoginLockout({
      failures: config.auth.lockout.failures,
      windowMs: config.auth.lockout.window,
      durationMs: config.auth.lockout.duration,
      redis,
      onLock: (scope) => metrics.authLockouts.inc({ scope }),
      clock,
    });
    const authenticator = new Authenticator({ users, lockout, cache: new VerifiedLoginCache(config.auth.cacheTtl, clock), failureDelayMs: config.auth.failureDelay, clock });

    // DKIM keys load before anything listens: a bad key stops the start, like a bad certificate.
    const dkimKeyring = new DkimKeyring({
      keys: config.dkim.keys,
      logger: logger.child({ component: 'dkim' }),
      // With no keys configured there is nothing to reload, and nothing to count.
      onReload: (outcome) => {
        if (!outcome.ok || dkimKeyring.keys.length > 0) metrics.reloads.inc({ what: 'dkim', result: outcome.ok ? 'success' : 'failure' });
      },
    });
    closers.push(() => dkimKeyring.close());
    const dkimSigner = new DkimSigner({ keyring: dkimKeyring, clock, logger: logger.child({ component: 'dkim' }) });

    // One resolver and answer cache for rules and delivery, asking `dns.servers` (or the system's).
    const dnsResolver = createResolver({ servers: config.dns.servers, timeoutMs: config.dns.timeout, tries: config.dns.tries, clock });

    // The policy: built-in rule types plus the operator's files; a bad file stops the start
    // here (and on a reload is refused while the running set stays).
    const policyLogger = logger.child({ component: 'policy' });
    const limiter = createLimiterStore(
      redis
        ? { store: 'redis', redis, logger: policyLogger, onFallback: (state) => metrics.rateLimitFallbacks.inc({ state }) }
        : { store: 'memory' },
    );
    closers.push(() => limiter.close());
    const ruleDeps: RuleDeps = { clock, logger: policyLogger, resolver: dnsResolver, limiter, signing: dkimSigner };
    const policySet = await loadPolicySet(config.policies.dir, { builtins: BUILTIN_RULE_TYPES, deps: ruleDeps });
    const policy = new PolicyEngine({
      set: policySet,
      clock,
      logger: policyLogger,
      onDecision: (decision) => {
        metrics.policyDecisions.inc({ rule: decision.rule, verdict: decision.verdict, mode: decision.mode });
        if (decision.verdict === 'error') metrics.policyRuleErrors.inc({ rule: decision.rule });
        // A hit is a client actually held back; a monitor-mode rule's would-be deferrals show in the decisions.
        if (decision.type === 'rate-limit' && decision.verdict === 'defer' && decision.mode === 'enforce') {
          metrics.rateLimitHits.inc({ rule: decision.rule });
        }
      },
    });
    const policyWatcher = new PolicyWatcher({
      dir: config.policies.dir,
      engine: policy,
      builtins: BUILTIN_RULE_TYPES,
      deps: ruleDeps,
      logger: policyLogger,
      onReload: (result) => metrics.policyReloads.inc({ result }),
    });
    closers.push(() => policyWatcher.close());
    policyLogger.info({ dir: config.policies.dir, rules: policySet.rules.length }, 'policy loaded');

    // The control socket comes up before the spool is opened: it is also the guard that no other
    // gateway works on this spool (its recovery would delete that one's messages in progress).
    const queueControl = new PendingQueueControl();
    const controlLogger = logger.child({ component: 'control' });
    try {
      await mkdir(config.spool.dir, { recursive: true, mode: 0o700 });
      const control = await startControlServer({ path: controlSocketPath(config.spool.dir), control: queueControl, logger: controlLogger });
      closers.push(() => control.close());
    } catch (err) {
      if (/another process answers/.test(errorMessage(err))) throw err;
      controlLogger.warn({ err: errorMessage(err) }, '`postern queue` cannot reach this gateway; its commands that change the queue refuse to run meanwhile');
    }
    const spoolDir = config.spool.dir;
    writeGatewayPid(spoolDir);
    closers.push(() => removeGatewayPid(spoolDir));

    const spool = await Spool.open({ dir: config.spool.dir, logger: logger.child({ component: 'spool' }), clock });
    metrics.watchSpool(spool, clock);

    const deliveryLogger = logger.child({ component: 'delivery' });
    const { delivery: deliveryConfig } = config;
    const deliveryResolver = dnsResolver;
    // Read once: the same extra CAs serve MX hosts and MTA-STS policy hosts.
    const mxCa = deliveryConfig.mx.ca === undefined ? undefined : readCaFile(deliveryConfig.mx.ca, 'MX');
    const mtaSts = deliveryConfig.mx.mtaSts.enabled
      ? new MtaStsResolver({
          resolver: deliveryResolver,
          clock,
          logger: deliveryLogger,
          httpsPort: deliveryConfig.mx.mtaSts.httpsPort,
          ...(mxCa !== undefined && { ca: mxCa }),
        })
      : undefined;
    const transport = new RoutedTransport({
      config,
      logger: deliveryLogger,
      resolver: deliveryResolver,
      ...(mxCa !== undefined && { mxCa }),
      ...(mtaSts && { mtaSts: (domain: string) => mtaSts.policyFor(domain) }),
    });
    const delivery = new DeliveryQueue({
      spool,
      transport,
      notifier: new SenderNotifier({
        spool,
        hostname: config.hostname,
        delayWarningMs: deliveryConfig.delayWarning,
        maxAgeMs: deliveryConfig.retry.maxAge,
        logger: deliveryLogger,
        onQueued: (kind) => metrics.notifications.inc({ kind }),
      }),
      clock,
      logger: deliveryLogger,
      retry: { schedule: deliveryConfig.retry.schedule, maxAgeMs: deliveryConfig.retry.maxAge, jitter: deliveryConfig.retry.jitter },
      concurrency: deliveryConfig.concurrency,
    });
    delivery.onAttempt(deliveryAttemptCounter(metrics));
    delivery.start();
    closers.push(() => delivery.stop(config.shutdown.gracePeriod));
    // `postern queue` reaches the running queue here, so its commands never race the workers.
    queueControl.ready(delivery);

    const smtp = await startSubmissionListeners({
      config,
      logger: logger.child({ component: 'smtp' }),
      clock,
      logins: authenticator,
      intake: spool,
      tlsMaterial: certificates.material,
      policy,
      signer: dkimSigner,
      observer: new SmtpMetrics(
        metrics,
        (['submission', 'submissions'] as const).filter((name) => config.listeners[name].enabled),
      ),
    });
    // The store logs each reload; new connections get the new pair, open sessions keep theirs.
    certificates.onChange((material) => smtp.updateCertificate(material));
    closers.push(() => smtp.close(config.shutdown.gracePeriod));

    const redisClient = redis;
    const probe = new Readiness({
      spoolTmpDir: join(config.spool.dir, 'tmp'),
      logger: logger.child({ component: 'http' }),
      dependencies: redisClient ? [{ name: 'redis', up: () => redisClient.status === 'ready' }] : [],
    });
    await probe.start();
    readiness = probe;
    closers.push(() => probe.stop());

    // A changed dkim section (a new active selector, a key added) applies to the next message.
    const liveSettings: LiveSettings[] = [{ sections: ['dkim'], apply: (next) => dkimKeyring.update(next.dkim.keys) }];
    let configWatcher: ConfigWatcher | undefined;
    if (deps.configFile) {
      const watcher = new ConfigWatcher({
        file: deps.configFile,
        initial: config,
        live: liveSettings,
        logger: logger.child({ component: 'config' }),
        onReload: (result) => metrics.reloads.inc({ what: 'config', result }),
      });
      configWatcher = watcher;
      closers.push(() => watcher.close());
    }

    let http: HttpEndpoints | undefined;
    if (config.http.enabled) {
      const endpoints = await startHttpEndpoints({
        host: config.http.host,
        port: config.http.port,
        registry: metrics.registry,
        ready: () => readiness?.ready ?? false,
        logger: logger.child({ component: 'http' }),
      });
      http = endpoints;
      // Closed last, so /healthz keeps answering and /readyz says 503 while everything drains.
      closers.unshift(() => endpoints.close());
      logger.info({ ...endpoints.address }, 'operations endpoints listening');
    }
    probe.markStarted();

    logger.info(
      {
        hostname: config.hostname,
        spool: config.spool.dir,
        delivery: deliveryConfig.mode,
        ...(deliveryConfig.smarthost && { smarthost: `${deliveryConfig.smarthost.host}:${deliveryConfig.smarthost.port}` }),
        routes: deliveryConfig.routes.length,
      },
      'postern started',
    );

    let stopping: Promise<void> | undefined;
    return {
      addresses: smtp.addresses,
      ...(http && { httpAddress: http.address }),
      metrics,
      reload() {
        users.reload();
        certificates.reload();
        void policyWatcher.reload();
        configWatcher?.reload();
        dkimKeyring.reload();
      },
      stop() {
        stopping ??= (async () => {
          readiness?.markDraining();
          // Out of the load balancer first, then stop accepting.
          if (config.shutdown.readinessDelay > 0) await new Promise((resolve) => setTimeout(resolve, config.shutdown.readinessDelay));
          logger.info({ activeSessions: smtp.activeSessions }, 'stopping');
          await closeAll();
          logger.info('postern stopped');
        })();
        return stopping;
      },
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
