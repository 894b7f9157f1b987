import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConnectionLimits } from '../../../src/smtp/connectionLimits.js';

describe('ConnectionLimits', () => {
  test('admits up to the per-address limit, then refuses that address but not others', () => {
    const limits = new ConnectionLimits({ maxConnections: 10, maxConnectionsPerIp: 2 });
    assert.equal(limits.admit('s1', '192.0.2.1'), 'admitted');
    assert.equal(limits.admit('s2', '192.0.2.1'), 'admitted');
    assert.equal(limits.admit('s3', '192.0.2.1'), 'too-many-from-address');
    assert.equal(limits.admit('s4', '192.0.2.2'), 'admitted');
  });
  test('refuses everyone past the overall limit', () => {
    const limits = new ConnectionLimits({ maxConnections: 2, maxConnectionsPerIp: 5 });
    limits.admit('s1', '192.0.2.1');
    limits.admit('s2', '192.0.2.2');
    assert.equal(limits.admit('s3', '192.0.2.3'), 'too-many');
  });
  test('gives a slot back on release, once, and ignores sessions it never admitted', () => {
    const limits = new ConnectionLimits({ maxConnections: 1, maxConnectionsPerIp: 1 });
    limits.admit('s1', '192.0.2.1');
    limits.release('never-admitted');
    assert.equal(limits.active, 1);
    limits.release('s1');
    limits.release('s1');
    assert.equal(limits.active, 0);
    assert.equal(limits.admit('s2', '192.0.2.1'), 'admitted');
  });
});
