import type { Config } from '../config/schema.js';
import { createNodeResolver } from '../dns/nodeResolver.js';
import { createLimiterStore } from '../policy/limiterStore.js';
import { loadPolicySet } from '../policy/loader.js';
import { BUILTIN_RULE_TYPES } from '../rules/index.js';
import { systemClock } from '../util/clock.js';
import { silentLogger } from '../util/logger.js';
import { formatDuration, formatSize } from '../util/units.js';

/** What `check-config` prints for a valid file: what will listen, where mail goes, where data lives. */
export function formatConfigSummary(config: Config): string {
  const listeners = (['submission', 'submissions'] as const).map((name) => {
    const l = config.listeners[name];
    return l.enabled ? `  ${name}: ${l.host}:${l.port} (${l.tls})` : `  ${name}: disabled`;
  });
  const smarthost = config.delivery.smarthost;
  const lockout = config.auth.lockout;
  return [
    `hostname: ${config.hostname}`,
    'listeners:',
    ...listeners,
    `tls: ${config.tls.cert} (${config.tls.selfSigned ? 'self-signed when missing' : 'must exist'}, minimum ${config.tls.minVersion})`,
    `users: ${config.auth.usersFile} (lockout after ${lockout.failures} failures in ${formatDuration(lockout.window)} for ${formatDuration(lockout.duration)})`,
    `limits: ${formatSize(config.limits.maxMessageSize)} per message, ${config.limits.maxRecipients} recipients, ` +
      `${config.limits.maxConnections} connections (${config.limits.maxConnectionsPerIp} per IP)`,
    `spool: ${config.spool.dir}`,
    `delivery: ${config.delivery.mode}` +
      (smarthost ? ` via ${smarthost.host}:${smarthost.port} (${smarthost.tls}${smarthost.auth ? `, AUTH as ${smarthost.auth.user}` : ''})` : '') +
      (config.delivery.mode === 'mx' ? ` (port ${config.delivery.mx.port}, TLS ${config.delivery.mx.tls}, MTA-STS ${config.delivery.mx.mtaSts.enabled ? 'on' : 'off'})` : ''),
    ...config.delivery.routes.map(
      (route) => `  route ${route.domains.join(', ')} -> ${route.via === 'relay' && route.relay ? `${route.relay.host}:${route.relay.port} (${route.relay.tls})` : route.via}`,
    ),
    `retry: ${config.delivery.retry.schedule.map(formatDuration).join(', ')}; give up after ${formatDuration(config.delivery.retry.maxAge)}`,
    `rate limits: ${config.rateLimit.store}`,
  ].join('\n');
}

/** Loads the policy as the gateway would; resolves with the number of rules, throws PolicyLoadError. */
export async function checkPolicies(config: Config): Promise<number> {
  const limiter = createLimiterStore({ store: 'memory' });
  try {
    const deps = { clock: systemClock, logger: silentLogger(), resolver: createNodeResolver(), limiter };
    return (await loadPolicySet(config.policies.dir, { builtins: BUILTIN_RULE_TYPES, deps })).rules.length;
  } finally {
    await limiter.close();
  }
}
