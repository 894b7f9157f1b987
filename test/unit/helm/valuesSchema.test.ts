import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { mergeValues } from './chartRenderer.js';
import { posternConfigJsonSchema } from './configJsonSchema.js';

const CHART_DIR = join(import.meta.dirname, '../../../helm/postern');
const schema = JSON.parse(readFileSync(join(CHART_DIR, 'values.schema.json'), 'utf8')) as {
  $schema: string;
  definitions: { posternConfig: unknown };
};
const defaults = parse(readFileSync(join(CHART_DIR, 'values.yaml'), 'utf8')) as Record<string, unknown>;
// Formats are not checked: Helm's validators differ on them, and the gateway checks URLs itself.
const validate = new Ajv({ allErrors: true, strict: false, validateFormats: false }).compile(schema);

/** Helm validates the user's values merged over values.yaml; so does this. */
function problemsWith(overrides: Record<string, unknown>): string[] {
  const values = mergeValues(defaults, overrides);
  return validate(values) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ''}`);
}

function walkPatterns(node: unknown, found: string[] = []): string[] {
  if (Array.isArray(node)) node.forEach((item) => walkPatterns(item, found));
  else if (node !== null && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) {
      if (key === 'pattern' && typeof value === 'string') found.push(value);
      else walkPatterns(value, found);
    }
  }
  return found;
}

describe('the chart values schema', () => {
  test('is a draft-07 schema that the default values.yaml satisfies', () => {
    assert.equal(schema.$schema, 'http://json-schema.org/draft-07/schema#');
    assert.deepEqual(problemsWith({}), []);
  });

  test('refuses several replicas without a shared Redis for the rate limits', () => {
    assert.ok(problemsWith({ replicaCount: 3 }).length > 0);
    assert.deepEqual(problemsWith({ replicaCount: 3, rateLimit: { redis: { url: 'redis://redis:6379' } } }), []);
    assert.deepEqual(problemsWith({ replicaCount: 3, rateLimit: { redis: { existingSecret: 'redis-url' } } }), []);
  });

  test('refuses autoscaling without a shared Redis', () => {
    assert.ok(problemsWith({ autoscaling: { enabled: true } }).length > 0);
    assert.deepEqual(problemsWith({ autoscaling: { enabled: true }, rateLimit: { redis: { url: 'redis://redis:6379' } } }), []);
  });

  test('refuses an unknown key, at the top, in a chart section and in the gateway configuration', () => {
    assert.ok(problemsWith({ replicas: 2 }).some((p) => p.includes('additional properties')));
    assert.ok(problemsWith({ service: { typ: 'LoadBalancer' } }).some((p) => p.startsWith('/service ')));
    assert.ok(problemsWith({ config: { listeners: { submision: { port: 2587 } } } }).some((p) => p.startsWith('/config/listeners ')));
  });

  test('refuses a port written as text or out of range', () => {
    assert.ok(problemsWith({ service: { ports: { submission: '587' } } }).some((p) => p.startsWith('/service/ports/submission')));
    assert.ok(problemsWith({ config: { listeners: { submission: { port: 70000 } } } }).length > 0);
    assert.ok(problemsWith({ metrics: { service: { port: 'http' } } }).length > 0);
  });

  test('refuses shutdown durations the chart cannot add up into terminationGracePeriodSeconds', () => {
    assert.ok(problemsWith({ config: { shutdown: { gracePeriod: '1m' } } }).some((p) => p.startsWith('/config/shutdown/gracePeriod')));
    assert.deepEqual(problemsWith({ config: { shutdown: { gracePeriod: '90s' } } }), []);
  });

  test('refuses setting in config what the chart sets itself', () => {
    assert.ok(problemsWith({ config: { rateLimit: { store: 'redis', url: 'redis://r:6379' } } }).length > 0);
    assert.ok(problemsWith({ config: { policies: { dir: '/somewhere' } } }).length > 0);
  });

  test('refuses cert-manager without an issuer, and a DKIM key without its Secret', () => {
    assert.ok(problemsWith({ tls: { certManager: { enabled: true } } }).length > 0);
    assert.deepEqual(problemsWith({ tls: { certManager: { enabled: true, issuerRef: { name: 'letsencrypt' } } } }), []);
    assert.ok(problemsWith({ dkim: { keys: [{ domain: 'example.com', selector: 's1', key: 'private.pem' }] } }).length > 0);
  });

  test('embeds the gateway configuration schema as generated from src/config/schema.ts', () => {
    assert.deepEqual(
      schema.definitions.posternConfig,
      posternConfigJsonSchema(),
      'definitions.posternConfig in values.schema.json is out of date: replace it with the output of posternConfigJsonSchema() from test/unit/helm/configJsonSchema.ts',
    );
  });

  test('uses only regular expressions that Go (RE2) compiles, since Helm validates with Go', () => {
    for (const pattern of walkPatterns(schema)) {
      assert.doesNotMatch(pattern, /\(\?[=!<]|\\[1-9]/, `pattern ${pattern} has look-around or a back-reference`);
    }
  });
});
