import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { gatewayWithUpstream } from '../helpers/gateway.js';

describe('operations endpoints', () => {
  const fixture = gatewayWithUpstream('http: { enabled: true, host: 127.0.0.1, port: 0 }');
  const url = (path: string) => `http://127.0.0.1:${fixture.postern.gateway.httpAddress!.port}${path}`;

  test('/healthz and /readyz answer 200 while the gateway runs', async () => {
    assert.equal((await fetch(url('/healthz'))).status, 200);
    assert.equal((await fetch(url('/readyz'))).status, 200);
  });

  test('/metrics is Prometheus text from Postern\'s own registry, with process metrics', async () => {
    const response = await fetch(url('/metrics'));
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/plain/);
    const text = await response.text();
    assert.match(text, /^# TYPE postern_policy_decisions_total counter$/m);
    assert.match(text, /^process_cpu_seconds_total /m);
  });

  test('anything else is 404, and only GET and HEAD are allowed', async () => {
    assert.equal((await fetch(url('/nope'))).status, 404);
    assert.equal((await fetch(url('/metrics'), { method: 'POST' })).status, 405);
  });
});
