import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { describe, test } from 'node:test';
import { Ajv } from 'ajv';
import { Registry } from 'prom-client';
import { parse } from 'yaml';
import { checkPolicies } from '../../../src/cli/configSummary.js';
import { parseConfig } from '../../../src/config/load.js';
import { configSchema, type Config } from '../../../src/config/schema.js';
import { startHttpEndpoints } from '../../../src/http/httpServer.js';
import { silentLogger } from '../../../src/util/logger.js';
import { mergeValues, renderChart, TemplateFailure, type RenderedChart } from './chartRenderer.js';

const REPO = join(import.meta.dirname, '../../..');
const CHART_DIR = join(REPO, 'helm/postern');
const CONFIG_DEFAULTS = configSchema.parse({});

/** Every optional part switched on, each secret source used: the chart's widest rendering. */
const EVERYTHING_ON = {
  replicaCount: 3,
  config: {
    hostname: 'relay.example.com',
    delivery: { smarthost: { host: 'smtp.example.net', port: 587, auth: { user: 'relay' } } },
    shutdown: { readinessDelay: '10s', gracePeriod: '45s' },
  },
  rateLimit: { redis: { url: 'redis://redis.mail.svc:6379' } },
  delivery: { smarthost: { existingSecret: 'smarthost', passwordKey: 'password' } },
  tls: { certManager: { enabled: true, issuerRef: { name: 'letsencrypt' } } },
  users: { inline: 'users:\n  alice:\n    password: "$scrypt$placeholder"\n    senders: [alice@example.com]\n' },
  dkim: {
    keys: [
      { domain: 'example.com', selector: 's2025', secretName: 'dkim-example-com', key: 'private.pem' },
      { domain: 'example.com', selector: 'ed2025', secretName: 'dkim-example-com-ed', key: 'ed25519.pem', active: false },
    ],
  },
  policies: { files: { '40-local.yaml': 'rules:\n  - name: local-headers\n    type: headers\n    params:\n      require: [From, Date]\n' } },
  rollOnConfigChange: true,
  podAnnotations: { 'example.com/team': 'mail' },
  service: { type: 'LoadBalancer', externalTrafficPolicy: 'Local', loadBalancerIP: '192.0.2.10', loadBalancerSourceRanges: ['10.0.0.0/8'], annotations: { 'example.com/lb': 'internal' } },
  autoscaling: { enabled: true, minReplicas: 3, maxReplicas: 6 },
  networkPolicy: { enabled: true, ingress: { smtpFrom: ['10.0.0.0/8', '192.168.0.0/16'] } },
  metrics: { serviceMonitor: { enabled: true, labels: { release: 'kube-prometheus-stack' } }, prometheusRule: { enabled: true }, grafanaDashboard: { enabled: true } },
};

/** What the pods' environment provides for the ${VAR}s the chart writes into the configuration. */
const POD_ENV = { SMARTHOST_PASS: 'from-the-secret', POSTERN_REDIS_URL: 'redis://redis:6379' };

type K8sObject = Record<string, any>;

function objectOf(chart: RenderedChart, kind: string, nameSuffix = ''): K8sObject {
  const found = chart.documents.map((d) => d.object as K8sObject).filter((o) => o.kind === kind && String(o.metadata?.name).endsWith(nameSuffix));
  assert.equal(found.length, 1, `exactly one ${kind} named *${nameSuffix}`);
  return found[0]!;
}

function container(chart: RenderedChart): K8sObject {
  return objectOf(chart, 'StatefulSet').spec.template.spec.containers[0];
}

function renderedConfig(chart: RenderedChart): Config {
  const text = objectOf(chart, 'ConfigMap', '-config').data['postern.yaml'] as string;
  return parseConfig(text, '/etc/postern/config/postern.yaml', POD_ENV);
}

/** The directory a pod path is mounted from, and the volume behind it. */
function mountFor(chart: RenderedChart, path: string): { mount: K8sObject; volume: K8sObject } {
  const mounts = container(chart).volumeMounts as K8sObject[];
  const mount = mounts.filter((m) => path === m.mountPath || path.startsWith(`${m.mountPath}/`)).sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
  assert.ok(mount, `${path} is on a mounted volume`);
  const volume = (objectOf(chart, 'StatefulSet').spec.template.spec.volumes as K8sObject[]).find((v) => v.name === mount.name) ?? { name: 'data', persistent: true };
  return { mount, volume };
}

/** The Secret key a file mounted from a Secret volume comes from. */
function secretFileSource(chart: RenderedChart, path: string): { secretName: string; key: string } {
  const { mount, volume } = mountFor(chart, path);
  assert.ok(volume.secret, `${path} comes from a Secret`);
  const file = posix.relative(mount.mountPath, path);
  const item = (volume.secret.items as K8sObject[]).find((i) => i.path === file);
  assert.ok(item, `${path} is an item of Secret ${volume.secret.secretName}`);
  return { secretName: volume.secret.secretName, key: item.key };
}

const rendered = {
  defaults: renderChart(CHART_DIR),
  everything: renderChart(CHART_DIR, { values: [EVERYTHING_ON] }),
};

describe('the chart rendered with its default values', () => {
  const chart = rendered.defaults;

  test('renders every template to YAML that parses, each object named and typed', () => {
    assert.ok(chart.documents.length >= 7);
    for (const { template, object } of chart.documents) {
      assert.ok(object.apiVersion && object.kind, `${template} has apiVersion and kind`);
      assert.match(String((object as K8sObject).metadata?.name), /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, `${template} has a DNS-label name`);
    }
    const kinds = chart.documents.map((d) => d.object.kind).sort();
    assert.deepEqual(kinds, ['ConfigMap', 'ConfigMap', 'PodDisruptionBudget', 'Service', 'Service', 'Service', 'ServiceAccount', 'StatefulSet']);
  });

  test('renders a configuration that the gateway accepts, with the spool on the volume', () => {
    const config = renderedConfig(chart);
    assert.equal(config.spool.dir, '/var/lib/postern/spool');
    assert.equal(mountFor(chart, config.spool.dir).mount.name, 'data');
    assert.equal(mountFor(chart, config.auth.usersFile).mount.name, 'data', 'a generated users file is kept on the volume');
    assert.equal(mountFor(chart, config.tls.cert).mount.name, 'data', 'a generated certificate is kept on the volume');
    assert.equal(config.tls.selfSigned, true);
    assert.equal(config.rateLimit.store, 'memory');
  });

  test('maps 587 and 465 to the listener ports the gateway opens by default', () => {
    const service = objectOf(chart, 'Service', 'postern');
    const ports = container(chart).ports as K8sObject[];
    const target = (name: string) => {
      const servicePort = (service.spec.ports as K8sObject[]).find((p) => p.name === name)!;
      return { port: servicePort.port, container: ports.find((p) => p.name === servicePort.targetPort)?.containerPort };
    };
    assert.deepEqual(target('submission'), { port: 587, container: CONFIG_DEFAULTS.listeners.submission.port });
    assert.deepEqual(target('submissions'), { port: 465, container: CONFIG_DEFAULTS.listeners.submissions.port });
    const metrics = objectOf(chart, 'Service', '-metrics');
    const metricsTarget = (metrics.spec.ports as K8sObject[])[0]!.targetPort;
    assert.equal(ports.find((p) => p.name === metricsTarget)?.containerPort, CONFIG_DEFAULTS.http.port);
  });

  test('probes paths that the gateway\'s HTTP endpoints answer, on its http port', async () => {
    const c = container(chart);
    const probes = { startup: c.startupProbe, liveness: c.livenessProbe, readiness: c.readinessProbe };
    assert.equal(probes.liveness.httpGet.path, '/healthz');
    assert.equal(probes.readiness.httpGet.path, '/readyz');
    for (const probe of Object.values(probes)) {
      assert.equal((c.ports as K8sObject[]).find((p) => p.name === probe.httpGet.port)?.containerPort, CONFIG_DEFAULTS.http.port);
    }
    const endpoints = await startHttpEndpoints({ host: '127.0.0.1', port: 0, registry: new Registry(), ready: () => true, logger: silentLogger() });
    try {
      for (const probe of Object.values(probes)) {
        const response = await fetch(`http://127.0.0.1:${endpoints.address.port}${probe.httpGet.path}`);
        assert.equal(response.status, 200, `${probe.httpGet.path} answers 200 when healthy and ready`);
      }
    } finally {
      await endpoints.close();
    }
  });

  test('gives the pod time for the whole drain: readiness delay, sessions, then deliveries', () => {
    const config = renderedConfig(chart);
    const seconds = objectOf(chart, 'StatefulSet').spec.template.spec.terminationGracePeriodSeconds;
    const margin = chart.values.terminationGracePeriodMarginSeconds as number;
    assert.equal(seconds, (config.shutdown.readinessDelay + 2 * config.shutdown.gracePeriod) / 1000 + margin);
  });

  test('runs unprivileged on a read-only root filesystem', () => {
    const pod = objectOf(chart, 'StatefulSet').spec.template.spec;
    const security = container(chart).securityContext;
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.equal(pod.securityContext.fsGroup, 10001);
    assert.equal(security.runAsUser, 10001);
    assert.equal(security.runAsGroup, 10001);
    assert.equal(security.readOnlyRootFilesystem, true);
    assert.equal(security.allowPrivilegeEscalation, false);
    assert.deepEqual(security.capabilities.drop, ['ALL']);
    assert.equal(security.seccompProfile.type, 'RuntimeDefault');
    assert.equal(pod.automountServiceAccountToken, false);
  });

  test('keeps one spool volume per replica and starts replicas in parallel', () => {
    const set = objectOf(chart, 'StatefulSet');
    assert.equal(set.spec.podManagementPolicy, 'Parallel');
    assert.equal(set.spec.serviceName, objectOf(chart, 'Service', '-headless').metadata.name);
    const claim = set.spec.volumeClaimTemplates[0];
    assert.equal(claim.metadata.name, 'data');
    assert.equal(claim.spec.resources.requests.storage, '5Gi');
    assert.equal(claim.spec.storageClassName, undefined, 'no storageClassName means the cluster default');
  });

  test('points POSTERN_CONFIG at the mounted ConfigMap', () => {
    const env = (container(chart).env as K8sObject[]).find((e) => e.name === 'POSTERN_CONFIG');
    const { mount, volume } = mountFor(chart, env?.value);
    assert.equal(posix.basename(env?.value), 'postern.yaml');
    assert.equal(volume.configMap.name, objectOf(chart, 'ConfigMap', '-config').metadata.name);
    assert.equal(mount.readOnly, true);
  });

  test('ships the repository\'s baseline policies unchanged, and the gateway loads them', async () => {
    const data = objectOf(chart, 'ConfigMap', '-policies').data as Record<string, string>;
    const baseline = readdirSync(join(REPO, 'policies')).filter((name) => name.endsWith('.yaml'));
    assert.deepEqual(Object.keys(data).sort(), baseline.sort());
    for (const name of baseline) {
      assert.equal(data[name], readFileSync(join(REPO, 'policies', name), 'utf8'), `files/policies/${name} matches policies/${name}`);
    }
    const config = renderedConfig(chart);
    assert.equal(mountFor(chart, config.policies.dir).volume.configMap.name, objectOf(chart, 'ConfigMap', '-policies').metadata.name);
    const dir = await mkdtemp(join(tmpdir(), 'postern-chart-policies-'));
    try {
      for (const [name, text] of Object.entries(data)) await writeFile(join(dir, name), text);
      assert.equal(await checkPolicies({ ...config, policies: { dir } }), 6);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('agrees with the image\'s own configuration on where data lives', { skip: !existsSync(join(CHART_DIR, 'files/postern.yaml')) && 'helm/postern/files/postern.yaml is not there yet' }, () => {
    const image = parseConfig(readFileSync(join(CHART_DIR, 'files/postern.yaml'), 'utf8'), '/etc/postern/postern.yaml', POD_ENV);
    const config = renderedConfig(chart);
    assert.equal(config.spool.dir, image.spool.dir);
    assert.equal(config.auth.usersFile, image.auth.usersFile);
    assert.equal(config.tls.cert, image.tls.cert);
    assert.equal(config.tls.key, image.tls.key);
    assert.equal(config.listeners.submission.port, image.listeners.submission.port);
    assert.equal(config.listeners.submissions.port, image.listeners.submissions.port);
    assert.equal(config.http.port, image.http.port);
  });
});

describe('the chart rendered with every option on', () => {
  const chart = rendered.everything;

  test('uses values that pass the chart\'s schema', () => {
    const schema = JSON.parse(readFileSync(join(CHART_DIR, 'values.schema.json'), 'utf8')) as object;
    const validate = new Ajv({ allErrors: true, strict: false, validateFormats: false }).compile(schema);
    assert.ok(validate(mergeValues(parse(readFileSync(join(CHART_DIR, 'values.yaml'), 'utf8')), EVERYTHING_ON)), JSON.stringify(validate.errors));
  });

  test('renders every template to YAML that parses', () => {
    const kinds = new Set(chart.documents.map((d) => d.object.kind));
    for (const kind of ['StatefulSet', 'Service', 'ConfigMap', 'Secret', 'Certificate', 'ServiceMonitor', 'PrometheusRule', 'PodDisruptionBudget', 'HorizontalPodAutoscaler', 'NetworkPolicy', 'ServiceAccount']) {
      assert.ok(kinds.has(kind), `renders a ${kind}`);
    }
    for (const [template, output] of chart.manifests) {
      if (!template.startsWith('_')) assert.ok(output.trim().length > 0, `${template} renders something`);
    }
  });

  test('renders a configuration that the gateway accepts, every file where the chart mounts it', () => {
    const config = renderedConfig(chart);
    assert.equal(config.hostname, 'relay.example.com');
    assert.deepEqual(config.rateLimit, { store: 'redis', url: 'redis://redis.mail.svc:6379' });
    assert.equal(config.delivery.mode, 'smarthost');
    assert.equal(config.delivery.smarthost?.auth?.pass, 'from-the-secret', 'the password comes from ${SMARTHOST_PASS}');
    assert.equal(config.tls.selfSigned, false, 'a missing mounted certificate is an error, not a reason to generate one');
    assert.deepEqual(secretFileSource(chart, config.tls.cert), { secretName: 'mail-postern-tls', key: 'tls.crt' });
    assert.deepEqual(secretFileSource(chart, config.tls.key), { secretName: 'mail-postern-tls', key: 'tls.key' });
    assert.equal(objectOf(chart, 'Certificate').spec.secretName, 'mail-postern-tls');
    assert.deepEqual(objectOf(chart, 'Certificate').spec.dnsNames, ['relay.example.com']);
    assert.deepEqual(secretFileSource(chart, config.auth.usersFile), { secretName: 'mail-postern-users', key: 'users.yaml' });
    assert.deepEqual(
      config.dkim.keys.map((key) => ({ ...secretFileSource(chart, key.keyFile), active: key.active })),
      [
        { secretName: 'dkim-example-com', key: 'private.pem', active: true },
        { secretName: 'dkim-example-com-ed', key: 'ed25519.pem', active: false },
      ],
    );
  });

  test('puts the inline users file into a Secret and the smarthost password into the environment', () => {
    const secret = objectOf(chart, 'Secret', '-users');
    assert.equal(Buffer.from(secret.data['users.yaml'], 'base64').toString(), EVERYTHING_ON.users.inline);
    const env = (container(chart).env as K8sObject[]).find((e) => e.name === 'SMARTHOST_PASS');
    assert.deepEqual(env?.valueFrom, { secretKeyRef: { name: 'smarthost', key: 'password' } });
  });

  test('mounts whole directories, never subPath, so that Kubernetes\' symlink swap reaches the watchers', () => {
    const mounts = container(chart).volumeMounts as K8sObject[];
    for (const mount of mounts) assert.equal(mount.subPath, undefined, `${mount.name} has no subPath`);
    const volumes = new Set((objectOf(chart, 'StatefulSet').spec.template.spec.volumes as K8sObject[]).map((v) => v.name));
    for (const mount of mounts.filter((m) => m.name !== 'data')) assert.ok(volumes.has(mount.name), `${mount.name} has a volume`);
    const paths = mounts.map((m) => m.mountPath as string);
    for (const path of paths) {
      assert.ok(!paths.some((other) => other !== path && path.startsWith(`${other}/`)), `${path} is not mounted inside another mount`);
    }
  });

  test('adds the policies given in values to the baseline, and the gateway loads them all', async () => {
    const data = objectOf(chart, 'ConfigMap', '-policies').data as Record<string, string>;
    assert.deepEqual(Object.keys(data), ['10-identity.yaml', '20-rate-limits.yaml', '30-content.yaml', '40-local.yaml']);
    const dir = await mkdtemp(join(tmpdir(), 'postern-chart-policies-'));
    try {
      for (const [name, text] of Object.entries(data)) await writeFile(join(dir, name), text);
      assert.equal(await checkPolicies({ ...renderedConfig(chart), policies: { dir } }), 7);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('rolls the pods on a configuration change only when asked, keeping the user\'s annotations', () => {
    const annotations = objectOf(chart, 'StatefulSet').spec.template.metadata.annotations;
    assert.equal(annotations['example.com/team'], 'mail');
    assert.match(annotations['checksum/config'], /^[0-9a-f]{64}$/);
    assert.match(annotations['checksum/policies'], /^[0-9a-f]{64}$/);
    assert.equal(objectOf(rendered.defaults, 'StatefulSet').spec.template.metadata.annotations, undefined);
    const changed = renderChart(CHART_DIR, { values: [EVERYTHING_ON, { config: { log: { level: 'debug' } } }] });
    assert.notEqual(objectOf(changed, 'StatefulSet').spec.template.metadata.annotations['checksum/config'], annotations['checksum/config']);
  });

  test('exposes the SMTP Service with the client-IP-preserving options', () => {
    const service = objectOf(chart, 'Service', 'postern');
    assert.equal(service.spec.type, 'LoadBalancer');
    assert.equal(service.spec.externalTrafficPolicy, 'Local');
    assert.equal(service.spec.loadBalancerIP, '192.0.2.10');
    assert.equal(service.metadata.annotations['example.com/lb'], 'internal');
  });

  test('lets the autoscaler own the replica count, and computes the grace period from the values', () => {
    const set = objectOf(chart, 'StatefulSet');
    assert.equal(set.spec.replicas, undefined);
    assert.equal(objectOf(chart, 'HorizontalPodAutoscaler').spec.scaleTargetRef.name, set.metadata.name);
    assert.equal(set.spec.template.spec.terminationGracePeriodSeconds, 10 + 2 * 45 + 10);
  });

  test('limits traffic to SMTP from the given networks, metrics from monitoring, and the egress delivery needs', () => {
    const policy = objectOf(chart, 'NetworkPolicy');
    const [smtp, metrics] = policy.spec.ingress as K8sObject[];
    assert.deepEqual(smtp!.from, [{ ipBlock: { cidr: '10.0.0.0/8' } }, { ipBlock: { cidr: '192.168.0.0/16' } }]);
    assert.deepEqual(metrics!.from, [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }]);
    const egressPorts = (policy.spec.egress as K8sObject[]).flatMap((rule) => (rule.ports as K8sObject[]).map((p) => `${p.protocol}/${p.port}`));
    for (const wanted of ['UDP/53', 'TCP/53', 'TCP/25', 'TCP/465', 'TCP/587', 'TCP/443', 'TCP/6379']) assert.ok(egressPorts.includes(wanted), `egress allows ${wanted}`);
    const podLabels = objectOf(chart, 'StatefulSet').spec.template.metadata.labels;
    for (const [key, value] of Object.entries(policy.spec.podSelector.matchLabels)) assert.equal(podLabels[key], value);
  });

  test('selects its own pods from every Service, the PDB and the ServiceMonitor', () => {
    const podLabels = objectOf(chart, 'StatefulSet').spec.template.metadata.labels;
    for (const service of chart.documents.filter((d) => d.object.kind === 'Service').map((d) => d.object as K8sObject)) {
      for (const [key, value] of Object.entries(service.spec.selector)) assert.equal(podLabels[key], value, `${service.metadata.name} selects the pods`);
    }
    assert.equal(objectOf(chart, 'PodDisruptionBudget').spec.maxUnavailable, 1);
    const monitor = objectOf(chart, 'ServiceMonitor');
    const metricsService = objectOf(chart, 'Service', '-metrics');
    for (const [key, value] of Object.entries(monitor.spec.selector.matchLabels)) assert.equal(metricsService.metadata.labels[key], value);
    assert.equal(monitor.spec.endpoints[0].port, metricsService.spec.ports[0].name);
  });
});

describe('the chart refuses at render time', () => {
  test('a smarthost password without the smarthost user it belongs to', () => {
    assert.throws(() => renderChart(CHART_DIR, { values: [{ delivery: { smarthost: { existingSecret: 'smarthost' } } }] }), TemplateFailure);
  });

  test('a cert-manager certificate with no name to certify', () => {
    assert.throws(() => renderChart(CHART_DIR, { values: [{ tls: { certManager: { enabled: true, issuerRef: { name: 'letsencrypt' } } } }] }), TemplateFailure);
  });
});
