import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  CHART_DIR,
  eventually,
  type InstantSample,
  startMetricsGateway,
  startPrometheus,
  type MetricsGateway,
  type PrometheusServer,
} from '../helpers/prometheus.js';

interface RuleState {
  name: string;
  health: string;
  lastError?: string;
}

describe('a real Prometheus server scraping Postern', () => {
  let gateway: MetricsGateway | undefined;
  let prometheus: PrometheusServer | undefined;

  before(async () => {
    gateway = await startMetricsGateway();
    prometheus = await startPrometheus({
      targets: [gateway.metricsTarget],
      ruleFiles: [join(CHART_DIR, 'alerts/postern.rules.yaml')],
    });
  });
  after(async () => {
    await prometheus?.stop();
    await gateway?.dispose();
  });

  test('finds the target up, then counts an accepted message through its query API', async () => {
    const server = prometheus!;
    await eventually('the Postern target is up', async () => {
      const up = await server.query(`up{job="postern", instance="${gateway!.metricsTarget}"}`);
      return up[0]?.value === 1 ? { done: true } : { last: up };
    });
    await gateway!.sendMessage('scraped');

    const accepted = await eventually<InstantSample[]>('Prometheus has scraped the accepted message', async () => {
      const result = await server.query('postern_messages_accepted_total');
      const value = result[0]?.value;
      return value !== undefined && value >= 1 ? { done: result } : { last: result };
    });
    assert.equal(accepted.length, 1, 'one series: one gateway, no labels');
    assert.equal(accepted[0]!.metric.job, 'postern');
    assert.equal(accepted[0]!.metric.instance, gateway!.metricsTarget);
    assert.equal(accepted[0]!.value, 1, 'exactly the one message sent');
  });

  test('loads the chart\'s alert rules and evaluates every one of them without error', async () => {
    const server = prometheus!;
    const rules = await eventually<RuleState[]>('every rule has been evaluated', async () => {
      const data = await server.api<{ groups: Array<{ rules: RuleState[] }> }>('rules');
      const all = data.groups.flatMap((group) => group.rules);
      const broken = all.filter((rule) => rule.health === 'err');
      if (broken.length > 0) return { done: all };
      return all.length > 0 && all.every((rule) => rule.health === 'ok') ? { done: all } : { last: all.map((r) => `${r.name}: ${r.health}`) };
    });
    assert.deepEqual(
      rules.filter((rule) => rule.health !== 'ok').map((rule) => `${rule.name}: ${rule.lastError}`),
      [],
    );
    assert.ok(rules.some((rule) => rule.name === 'PosternInstanceDown'));
  });

  test('accepts every expression of the Grafana dashboard as valid PromQL', async () => {
    const server = prometheus!;
    const dashboard = JSON.parse(readFileSync(join(CHART_DIR, 'dashboards/postern.json'), 'utf8')) as {
      panels: Array<{ title: string; targets?: Array<{ expr: string; refId: string }> }>;
    };
    // Grafana's substitutions, as it would make them with "All" instances selected.
    const asGrafanaSends = (expr: string) =>
      expr.replaceAll('$__rate_interval', '1m').replaceAll('$__range', '5m').replaceAll('$instance', '.*');
    const rejected: string[] = [];
    for (const panel of dashboard.panels) {
      for (const target of panel.targets ?? []) {
        await server.api('query', { query: asGrafanaSends(target.expr) }).catch((err: Error) => rejected.push(`${panel.title} (${target.refId}): ${err.message}`));
      }
    }
    assert.deepEqual(rejected, []);
  });
});
