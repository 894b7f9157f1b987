import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, parseConfig } from '../../../src/config/load.js';

const minimal = 'delivery:\n  smarthost: { host: relay.example.net }\n';

function problems(text: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConfig(text, '/etc/postern/postern.yaml', env);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return [...err.problems];
  }
  assert.fail('expected the configuration to be refused');
}

describe('configuration loading', () => {
  test('fills in the documented defaults and parses sizes and durations', () => {
    const config = parseConfig(minimal, '/etc/postern/postern.yaml', {});
    assert.equal(config.listeners.submission.port, 2587);
    assert.equal(config.listeners.submissions.tls, 'implicit');
    assert.equal(config.limits.maxMessageSize, 25 * 1024 * 1024);
    assert.equal(config.auth.lockout.window, 15 * 60_000);
    assert.deepEqual(config.delivery.retry.schedule.slice(0, 2), [60_000, 300_000]);
    assert.equal(config.tls.minVersion, 'TLSv1.2');
  });
  test('makes relative paths relative to the configuration file', () => {
    const config = parseConfig(minimal + 'spool: { dir: data/spool }\n', '/etc/postern/postern.yaml', {});
    assert.equal(config.spool.dir, '/etc/postern/data/spool');
    assert.equal(config.tls.key, '/etc/postern/certs/tls.key');
  });
  test('expands ${VAR} and ${VAR:-default} after parsing, so a value cannot inject YAML', () => {
    const config = parseConfig(
      'hostname: ${HOST:-relay.example.com}\ndelivery:\n  smarthost: { host: "${SMART}", port: "${PORT}" }\n',
      '/x/postern.yaml',
      { SMART: 'a: b', PORT: '2525' },
    );
    assert.equal(config.hostname, 'relay.example.com');
    assert.equal(config.delivery.smarthost?.host, 'a: b');
    assert.equal(config.delivery.smarthost?.port, 2525);
  });
  test('is frozen', () => {
    const config = parseConfig(minimal, '/x/postern.yaml', {});
    assert.throws(() => {
      (config.limits as { maxRecipients: number }).maxRecipients = 1;
    }, TypeError);
  });
  test('reports every unknown key with its path, and bad values with theirs', () => {
    const found = problems(minimal + 'limits: { maxRecipent: 5, dataTimeout: soon }\nlisteners:\n  submision: {}\n');
    assert.ok(found.includes('limits.maxRecipent: unknown key'), found.join('\n'));
    assert.ok(found.includes('listeners.submision: unknown key'), found.join('\n'));
    assert.ok(found.some((p) => p.startsWith('limits.dataTimeout: "soon" is not a duration')), found.join('\n'));
  });
  test('requires a smarthost in smarthost mode', () => {
    assert.deepEqual(problems('delivery: { mode: smarthost }\n'), ['delivery.smarthost: is required when delivery.mode or a route is smarthost']);
  });
  test('reports YAML syntax errors with their line', () => {
    const [first] = problems('delivery:\n  smarthost: { host: [\n');
    assert.match(first!, /^line \d+, column \d+: /);
  });
});

describe('DNS servers', () => {
  test('an entry that is not an address with an optional port is refused with its path', () => {
    assert.throws(
      () => parseConfig('dns: { servers: ["127.0.0.1:5353", "dns.example.net"] }\n', '/etc/postern/postern.yaml'),
      (err: Error) => /dns\.servers\.1: must be an IP address/.test(err.message),
    );
    assert.deepEqual(parseConfig('dns: { servers: ["10.0.0.53", "[::1]:53"] }\n', '/etc/postern/postern.yaml').dns.servers, ['10.0.0.53', '[::1]:53']);
  });
});
