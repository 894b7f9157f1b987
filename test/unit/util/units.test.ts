import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatDuration, formatSize, parseDuration, parseSize } from '../../../src/util/units.js';

describe('sizes and durations written as text', () => {
  test('sizes take binary and decimal units', () => {
    assert.equal(parseSize('25MiB'), 25 * 1024 * 1024);
    assert.equal(parseSize('10KiB'), 10240);
    assert.equal(parseSize('1MB'), 1_000_000);
    assert.equal(parseSize('512'), 512);
    assert.equal(parseSize(2048), 2048);
  });
  test('a size with an unknown unit is refused with the text in the message', () => {
    assert.throws(() => parseSize('25 furlongs'), /"25 furlongs" is not a size/);
    assert.throws(() => parseSize(-1), /not a size/);
  });
  test('durations take ms, s, m, h, d and compounds', () => {
    assert.equal(parseDuration('15m'), 900_000);
    assert.equal(parseDuration('300ms'), 300);
    assert.equal(parseDuration('5d'), 5 * 86_400_000);
    assert.equal(parseDuration('1h30m'), 5_400_000);
  });
  test('a duration without a unit or with junk is refused', () => {
    assert.throws(() => parseDuration(15), /write it with a unit/);
    assert.throws(() => parseDuration('5 minutes'), /"5 minutes" is not a duration/);
    assert.throws(() => parseDuration(''), /not a duration/);
  });
  test('formatting gives the shortest exact form', () => {
    assert.equal(formatSize(25 * 1024 * 1024), '25MiB');
    assert.equal(formatSize(1000), '1000B');
    assert.equal(formatDuration(900_000), '15m');
    assert.equal(formatDuration(1500), '1500ms');
  });
});
