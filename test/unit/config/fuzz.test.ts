import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { ConfigError, parseConfig } from '../../../src/config/load.js';

/**
 * Property-based checks of configuration parsing: whatever text an operator (or a broken
 * template, or a ConfigMap gone wrong) hands Postern, `parseConfig` either returns a validated
 * configuration or throws a ConfigError naming the problems; it never fails any other way,
 * which would surface as a stack trace instead of a message an operator can act on.
 */

const CONFIG_PATH = '/etc/postern/postern.yaml';
const ENV = { POSTERN_HOSTNAME: 'relay.example.com', SMARTHOST_HOST: 'smarthost.example.net', SMARTHOST_PORT: '2525' };
const SHIPPED = readFileSync(resolve(import.meta.dirname, '../../../postern.yaml'), 'utf8');

/** Runs parseConfig and classifies the outcome; anything but success or ConfigError is returned as a failure. */
function outcome(text: string): 'ok' | 'refused' {
  try {
    parseConfig(text, CONFIG_PATH, ENV);
    return 'ok';
  } catch (err) {
    if (err instanceof ConfigError) {
      assert.ok(err.problems.length > 0, 'a ConfigError names at least one problem');
      return 'refused';
    }
    throw new Error(`parseConfig threw something other than ConfigError for ${JSON.stringify(text.slice(0, 300))}`, { cause: err });
  }
}

/** Characters that carry meaning in YAML, so random text often parses into odd structures. */
const YAML_CHARS = [...'abcxyz019 \n\t:-?[]{},#&*!|>\'"%@`$\\.~', '${', '${X:-', '$${', '\r\n', '<<', '---', '...', 'ü', '\u0000', '\ufeff'];
const yamlish = fc.array(fc.constantFrom(...YAML_CHARS), { maxLength: 120 }).map((parts) => parts.join(''));

/** A JSON-like value of any shape, to put where the schema expects something else. */
const anyValue = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer(),
  fc.double(),
  fc.string({ maxLength: 20 }),
  fc.constantFrom('25MiB', '-1', '0', '1e309', '15m', 'never', '1h 2m', '${UNSET}', '${X:-7}', '127.0.0.1', '::1', 'smarthost', 'mx'),
  fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.oneof(fc.integer(), fc.string({ maxLength: 8 })), { maxKeys: 3 }),
);

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Every key path (objects and arrays) in a parsed document. */
function keyPaths(value: Json, prefix: Array<string | number> = []): Array<Array<string | number>> {
  if (Array.isArray(value)) return value.flatMap((item, i) => [[...prefix, i], ...keyPaths(item, [...prefix, i])]);
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).flatMap(([key, item]) => [[...prefix, key], ...keyPaths(item, [...prefix, key])]);
  }
  return [];
}

interface Mutation {
  pathIndex: number;
  kind: 'replace' | 'delete' | 'add-key';
  value: Json;
  newKey: string;
}

/** Applies one structural mutation to a deep copy of the shipped configuration. */
function mutate(base: Json, mutation: Mutation): Json {
  const copy = structuredClone(base) as Record<string, Json>;
  const paths = keyPaths(copy);
  const path = paths[mutation.pathIndex % paths.length]!;
  const parent = path.slice(0, -1).reduce<Json>((node, key) => (node as Record<string | number, Json>)[key]!, copy) as Record<string | number, Json>;
  const key = path[path.length - 1]!;
  if (mutation.kind === 'delete') {
    if (Array.isArray(parent)) parent.splice(key as number, 1);
    else delete parent[key];
  } else if (mutation.kind === 'replace') {
    parent[key] = mutation.value;
  } else {
    const target = parent[key];
    if (target !== null && typeof target === 'object' && !Array.isArray(target)) target[mutation.newKey] = mutation.value;
    else parent[key] = { [mutation.newKey]: mutation.value };
  }
  return copy;
}

const mutation: fc.Arbitrary<Mutation> = fc.record({
  pathIndex: fc.nat(),
  kind: fc.constantFrom<Mutation['kind']>('replace', 'delete', 'add-key'),
  value: anyValue as fc.Arbitrary<Json>,
  newKey: fc.oneof(fc.constantFrom('__proto__', 'constructor', 'toString', 'port', 'tls', ''), fc.string({ maxLength: 10 })),
});

/** Text-level damage: a slice cut out, or random YAML-ish text spliced in at a random place. */
const textEdit = fc.record({ at: fc.nat(), cut: fc.nat({ max: 40 }), insert: yamlish });

describe('configuration parsing under random input', () => {
  test('the shipped configuration itself parses, so the mutations below start from a valid document', () => {
    assert.equal(outcome(SHIPPED), 'ok');
  });

  test('random YAML-ish text is either accepted or refused with a ConfigError, never anything else', () => {
    fc.assert(
      fc.property(yamlish, (text) => {
        outcome(text);
      }),
      { numRuns: 400 },
    );
  });

  test('random structural mutations of the shipped configuration only ever end in a ConfigError', () => {
    const base = parseYaml(SHIPPED) as Json;
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (mutations) => {
        const mutated = mutations.reduce(mutate, base);
        outcome(stringifyYaml(mutated));
      }),
      { numRuns: 300 },
    );
  });

  test('random text edits of the shipped configuration only ever end in a ConfigError', () => {
    fc.assert(
      fc.property(fc.array(textEdit, { minLength: 1, maxLength: 3 }), (edits) => {
        let text = SHIPPED;
        for (const edit of edits) {
          const at = edit.at % (text.length + 1);
          text = text.slice(0, at) + edit.insert + text.slice(at + edit.cut);
        }
        outcome(text);
      }),
      { numRuns: 300 },
    );
  });

  test('resource-exhaustion shapes (alias bombs, deep nesting, huge scalars) are refused with a ConfigError', () => {
    const aliasBomb = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
    for (let i = 0; i < 9; i++) aliasBomb.push(`${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)}]`);
    const shapes = [
      aliasBomb.join('\n'),
      `hostname: ${'['.repeat(5000)}${']'.repeat(5000)}`,
      `hostname: ${'{a: '.repeat(3000)}1${'}'.repeat(3000)}`,
      `${'- '.repeat(2000)}x`,
      `hostname: "${'x'.repeat(1_000_000)}"`,
      'hostname: *undefinedAlias',
      'hostname: !!binary "not base64 at all ~~~"',
      `hostname: ${'${A}'.repeat(1000)}`,
    ];
    for (const text of shapes) assert.equal(outcome(text), 'refused', `expected a refusal for ${JSON.stringify(text.slice(0, 60))}`);
  });
});
