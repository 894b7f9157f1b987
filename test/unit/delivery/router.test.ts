import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseConfig } from '../../../src/config/load.js';
import { Router } from '../../../src/delivery/router.js';

function routerFor(delivery: string): Router {
  return new Router(parseConfig(`delivery: ${delivery}\n`, '/etc/postern/postern.yaml').delivery);
}

const ROUTES = `{
  mode: mx,
  smarthost: { host: smarthost.example.net },
  routes: [
    { domains: [corp.example, "*.corp.example"], via: relay, relay: { host: mail.corp.example, port: 25 } },
    { domains: ["*.lab.corp.example"], via: smarthost },
    { domains: [partner.example], via: mx, tls: require, verifyCertificate: true }
  ]
}`;

describe('routing recipients to next hops', () => {
  test('an exact domain, its wildcard subdomains, and the default go their own ways', () => {
    const router = routerFor(ROUTES);
    assert.equal(router.hopFor('corp.example').kind, 'relay');
    assert.equal(router.hopFor('dept.corp.example').name, 'route 1');
    assert.equal(router.hopFor('other.example').kind, 'mx');
    assert.equal(router.hopFor('notcorp.example').kind, 'mx');
  });

  test('the longest wildcard wins over a shorter one', () => {
    const router = routerFor(ROUTES);
    const hop = router.hopFor('host.lab.corp.example');
    assert.equal(hop.kind, 'relay');
    assert.equal(hop.kind === 'relay' && hop.relay.host, 'smarthost.example.net');
  });

  test('domains match whatever their case, with a trailing dot, and IDNs by their A-label', () => {
    const router = routerFor(`{ mode: mx, routes: [{ domains: ["bücher.example"], via: relay, relay: { host: 10.0.0.1 } }] }`);
    assert.equal(router.hopFor('BÜCHER.example.').kind, 'relay');
    assert.equal(router.hopFor('xn--bcher-kva.example').kind, 'relay');
  });

  test('a route over MX carries its own TLS requirement', () => {
    const hop = routerFor(ROUTES).hopFor('partner.example');
    assert.deepEqual(hop, { kind: 'mx', name: 'route 3', tls: 'require', verifyCertificate: true });
    assert.deepEqual(routerFor(ROUTES).hopFor('elsewhere.example'), { kind: 'mx', name: 'mx', tls: 'opportunistic', verifyCertificate: false });
  });

  test('smarthost mode sends every unrouted domain to the smarthost', () => {
    const hop = routerFor('{ smarthost: { host: relay.example.net } }').hopFor('anywhere.example');
    assert.equal(hop.kind === 'relay' && hop.relay.host, 'relay.example.net');
  });

  test('a plan puts a relay\'s recipients in one transaction and MX recipients in one per domain', () => {
    const plan = routerFor(ROUTES).plan(['a@corp.example', 'b@x.example', 'c@dept.corp.example', 'd@y.example', 'e@X.example']);
    const summary = plan.map((group) => `${group.hop.name}:${group.recipients.join(',')}`);
    assert.deepEqual(summary, ['route 1:a@corp.example,c@dept.corp.example', 'mx:b@x.example,e@X.example', 'mx:d@y.example']);
  });
});

describe('route configuration', () => {
  const problems = (delivery: string) => {
    try {
      parseConfig(`delivery: ${delivery}\n`, '/etc/postern/postern.yaml');
      return [];
    } catch (err) {
      return (err as { problems?: string[] }).problems ?? [String(err)];
    }
  };

  test('a relay route needs its relay, and only a relay route may have one', () => {
    assert.match(problems('{ routes: [{ domains: [a.example], via: relay }] }').join('\n'), /routes\.0\.relay: is required when via is relay/);
    assert.match(problems('{ routes: [{ domains: [a.example], via: mx, relay: { host: h } }] }').join('\n'), /only for via: relay/);
  });

  test('a smarthost route needs a smarthost', () => {
    assert.match(problems('{ routes: [{ domains: [a.example], via: smarthost }] }').join('\n'), /delivery\.smarthost: is required/);
  });

  test('a domain pattern is a domain or *. and a domain', () => {
    assert.match(problems('{ routes: [{ domains: ["a*.example"], via: mx }] }').join('\n'), /must be a domain/);
    assert.match(problems('{ routes: [{ domains: ["user@a.example"], via: mx }] }').join('\n'), /must be a domain/);
    assert.deepEqual(problems('{ routes: [{ domains: ["*.a.example", "A.Example."], via: mx }] }'), []);
  });

  test('without a mode, a configured smarthost is the default and otherwise MX is', () => {
    assert.equal(parseConfig('delivery: { smarthost: { host: h.example } }\n', '/x/p.yaml').delivery.mode, 'smarthost');
    assert.equal(parseConfig('log: { level: info }\n', '/x/p.yaml').delivery.mode, 'mx');
  });
});
