import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { parse } from 'yaml';
import {
  CHART_DIR,
  exposedSeriesNames,
  metricNamesIn,
  PROMTOOL,
  requireBinary,
  SERIES_ADDED_BY_PROMETHEUS,
  startMetricsGateway,
  type MetricsGateway,
} from '../helpers/prometheus.js';

const run = promisify(execFile);
const ALERTS_DIR = join(CHART_DIR, 'alerts');
const RULES_FILE = join(ALERTS_DIR, 'postern.rules.yaml');
const RULES_TEST_FILE = join(ALERTS_DIR, 'postern.rules.test.yaml');

interface AlertingRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** promtool's output whatever its exit code, so that a failure shows what promtool said. */
async function promtool(...args: string[]): Promise<{ code: number; output: string }> {
  await requireBinary(PROMTOOL);
  try {
    const { stdout, stderr } = await run(PROMTOOL, args, { cwd: ALERTS_DIR });
    return { code: 0, output: stdout + stderr };
  } catch (err) {
    const failure = err as { code?: number; stdout?: string; stderr?: string };
    return { code: failure.code ?? -1, output: `${failure.stdout ?? ''}${failure.stderr ?? ''}` };
  }
}

describe('the Prometheus alert rules in the chart', () => {
  const rules = (parse(readFileSync(RULES_FILE, 'utf8')) as { groups: Array<{ rules: AlertingRule[] }> }).groups.flatMap((group) => group.rules);

  test('pass promtool check rules', async () => {
    const { code, output } = await promtool('check', 'rules', RULES_FILE);
    assert.equal(code, 0, output);
    assert.match(output, /SUCCESS: \d+ rules found/);
  });

  test('pass their promtool unit tests: each alert fires when it should and stays quiet otherwise', async () => {
    const { code, output } = await promtool('test', 'rules', RULES_TEST_FILE);
    assert.equal(code, 0, output);
    assert.match(output, /SUCCESS/);
  });

  test('cover every alert the operators asked for, each with a severity, a summary and a runbook', () => {
    const names = rules.map((rule) => rule.alert);
    for (const wanted of [
      'PosternInstanceDown',
      'PosternQueueGrowing',
      'PosternOldestMessageOld',
      'PosternDeliveryFailureRatioHigh',
      'PosternAuthFailureSpike',
      'PosternCertificateExpiresSoon',
      'PosternPolicyReloadFailed',
    ]) {
      assert.ok(names.includes(wanted), `${wanted} is defined`);
    }
    for (const rule of rules) {
      assert.match(rule.labels?.severity ?? '', /^(critical|warning|info)$/, `${rule.alert} has a severity`);
      assert.ok(rule.annotations?.summary, `${rule.alert} has a summary`);
      assert.match(rule.annotations?.description ?? '', /Runbook: /, `${rule.alert} says what to do`);
    }
  });

  test('every alert is unit-tested both firing and quiet', () => {
    const tests = (parse(readFileSync(RULES_TEST_FILE, 'utf8')) as { tests: Array<{ alert_rule_test?: Array<{ alertname: string; exp_alerts?: unknown[] }> }> }).tests;
    const cases = tests.flatMap((t) => t.alert_rule_test ?? []);
    for (const rule of rules) {
      const own = cases.filter((c) => c.alertname === rule.alert);
      assert.ok(own.some((c) => (c.exp_alerts ?? []).length > 0), `${rule.alert} has a firing case`);
      assert.ok(own.some((c) => (c.exp_alerts ?? []).length === 0), `${rule.alert} has a quiet case`);
    }
  });

  describe('against a running gateway', () => {
    let gateway: MetricsGateway | undefined;
    before(async () => {
      gateway = await startMetricsGateway();
      await gateway.sendMessage('alerts');
    });
    after(async () => {
      await gateway?.dispose();
    });

    // The unit tests run on synthesised series, so only this catches a misspelt metric name.
    test('every metric an alert reads is exported by Postern (or added by Prometheus)', async () => {
      const exposed = exposedSeriesNames(await gateway!.metricsText());
      const missing = rules.flatMap((rule) =>
        metricNamesIn(rule.expr)
          .filter((name) => !exposed.has(name) && !SERIES_ADDED_BY_PROMETHEUS.has(name))
          .map((name) => ({ alert: rule.alert, name })),
      );
      assert.deepEqual(missing, [], 'metrics the alert rules read but /metrics does not export');
    });
  });
});
