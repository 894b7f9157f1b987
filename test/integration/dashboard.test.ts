import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  CHART_DIR,
  exposedSeriesNames,
  metricNamesIn,
  metricNamesInVariableQuery,
  SERIES_ADDED_BY_PROMETHEUS,
  startMetricsGateway,
  type MetricsGateway,
} from '../helpers/prometheus.js';

interface Target {
  expr?: string;
  refId?: string;
  datasource?: { type?: string; uid?: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type?: string; uid?: string };
  targets?: Target[];
  panels?: Panel[];
}
interface Variable {
  name: string;
  type: string;
  query: string | { query: string };
  datasource?: { type?: string; uid?: string };
}
interface Dashboard {
  schemaVersion: number;
  uid: string;
  title: string;
  templating: { list: Variable[] };
  panels: Panel[];
}

const DASHBOARD_FILE = join(CHART_DIR, 'dashboards/postern.json');

/** Every panel, including those nested in collapsed rows; rows themselves are layout, not queries. */
function queryPanels(dashboard: Dashboard): Panel[] {
  const all = dashboard.panels.flatMap((panel) => [panel, ...(panel.panels ?? [])]);
  return all.filter((panel) => panel.type !== 'row');
}

function variableQuery(variable: Variable): string {
  return typeof variable.query === 'string' ? variable.query : variable.query.query;
}

describe('the Grafana dashboard in the chart', () => {
  const dashboard = JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as Dashboard;

  test('is a schema 39 dashboard with a stable uid', () => {
    assert.equal(dashboard.schemaVersion, 39);
    assert.equal(dashboard.uid, 'postern-overview');
  });

  test('is templated by a Prometheus data source and by instance', () => {
    const variables = new Map(dashboard.templating.list.map((variable) => [variable.name, variable]));
    const datasource = variables.get('datasource');
    assert.ok(datasource, 'a "datasource" variable');
    assert.equal(datasource.type, 'datasource');
    assert.equal(datasource.query, 'prometheus');
    const instance = variables.get('instance');
    assert.ok(instance, 'an "instance" variable');
    assert.equal(instance.type, 'query');
    assert.equal(instance.datasource?.uid, '${datasource}');
    assert.match(variableQuery(instance), /^label_values\(.+,\s*instance\)$/);
  });

  test('every panel queries the chosen data source, with at least one expression filtered by instance', () => {
    const panels = queryPanels(dashboard);
    assert.ok(panels.length >= 15, `expected the full set of panels, found ${panels.length}`);
    assert.equal(new Set(panels.map((panel) => panel.id)).size, panels.length, 'panel ids are unique');
    for (const panel of panels) {
      assert.ok(panel.targets && panel.targets.length > 0, `panel "${panel.title}" has no target`);
      assert.equal(panel.datasource?.uid, '${datasource}', `panel "${panel.title}" uses the datasource variable`);
      for (const target of panel.targets) {
        assert.ok(target.expr && target.expr.trim() !== '', `panel "${panel.title}" target ${target.refId} has an expression`);
        assert.equal(target.datasource?.uid, '${datasource}', `panel "${panel.title}" target ${target.refId} uses the datasource variable`);
        assert.match(target.expr, /instance=~"\$instance"/, `panel "${panel.title}" target ${target.refId} follows the instance variable`);
      }
    }
  });

  test('metric names are read out of PromQL, leaving functions, labels and keywords aside', () => {
    assert.deepEqual(
      metricNamesIn('histogram_quantile(0.95, sum by (le) (rate(postern_delivery_latency_seconds_bucket{instance=~"$instance"}[$__rate_interval])))'),
      ['postern_delivery_latency_seconds_bucket'],
    );
    assert.deepEqual(
      metricNamesIn('sum(increase(a_total{x="y"}[5m])) / on (job) group_left (le) b_seconds offset 15m and up == 0 unless c:rate5m > 1e3'),
      ['a_total', 'b_seconds', 'up', 'c:rate5m'],
    );
    assert.deepEqual(metricNamesInVariableQuery('label_values(up{job=~".*postern.*"}, instance)'), ['up']);
  });

  describe('against a running gateway', () => {
    let gateway: MetricsGateway | undefined;
    before(async () => {
      gateway = await startMetricsGateway();
      // One message end to end, so that labelled series (listener, mechanism, result...) exist.
      await gateway.sendMessage('dashboard');
    });
    after(async () => {
      await gateway?.dispose();
    });

    test('every metric an expression or variable queries is exported by Postern (or added by Prometheus)', async () => {
      const exposed = exposedSeriesNames(await gateway!.metricsText());
      const queried: Array<{ where: string; name: string }> = [];
      for (const panel of queryPanels(dashboard)) {
        for (const target of panel.targets ?? []) {
          const names = metricNamesIn(target.expr ?? '');
          assert.ok(names.length > 0, `no metric name found in "${panel.title}" ${target.refId}: ${target.expr}`);
          for (const name of names) queried.push({ where: `${panel.title} (${target.refId})`, name });
        }
      }
      for (const variable of dashboard.templating.list.filter((v) => v.type === 'query')) {
        for (const name of metricNamesInVariableQuery(variableQuery(variable))) queried.push({ where: `variable $${variable.name}`, name });
      }
      const missing = queried.filter(({ name }) => !exposed.has(name) && !SERIES_ADDED_BY_PROMETHEUS.has(name));
      assert.deepEqual(missing, [], 'metrics the dashboard queries but /metrics does not export');
    });
  });
});
