import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { loadPolicySet } from '../../../src/policy/loader.js';
import { parsePolicyFile } from '../../../src/policy/policyFile.js';
import { PolicyLoadError } from '../../../src/policy/policyLoadError.js';
import { BUILTIN_RULE_TYPES } from '../../../src/rules/index.js';
import { tempDir, testDeps } from './support.js';

/**
 * Property-based checks of policy loading with the real built-in rule types: whatever a policy
 * file holds, loading either yields a policy set or throws one PolicyLoadError listing the
 * problems. Any other failure would take down a reload (or a start) with a stack trace instead
 * of keeping the previous policy and telling the operator what is wrong.
 */

const POLICIES = resolve(import.meta.dirname, '../../../policies');
const SHIPPED = readdirSync(POLICIES)
  .filter((name) => name.endsWith('.yaml'))
  .map((name) => readFileSync(join(POLICIES, name), 'utf8'));

const { dir, cleanup } = tempDir();
after(cleanup);

/** Loads `text` as the only policy file; anything but success or PolicyLoadError fails the property. */
async function outcome(text: string): Promise<'ok' | 'refused'> {
  for (const name of readdirSync(dir)) rmSync(join(dir, name));
  writeFileSync(join(dir, '10-fuzz.yaml'), text);
  // The file-level parser on its own must never throw either: it reports problems.
  const parsed = parsePolicyFile(text, '10-fuzz.yaml');
  assert.ok(Array.isArray(parsed.problems));
  try {
    await loadPolicySet(dir, { builtins: BUILTIN_RULE_TYPES, deps: testDeps() });
    return 'ok';
  } catch (err) {
    if (err instanceof PolicyLoadError) {
      assert.ok(err.problems.length > 0, 'a PolicyLoadError names at least one problem');
      return 'refused';
    }
    throw new Error(`policy loading threw something other than PolicyLoadError for ${JSON.stringify(text.slice(0, 300))}`, { cause: err });
  }
}

const YAML_CHARS = [...'abxyz019 \n\t:-?[]{},#&*!|>\'"%@`.~/', 'rules:', '\n  - ', 'name: ', 'type: ', 'params: ', 'when: ', 'stage: ', '\u0000', 'ü'];
const yamlish = fc.array(fc.constantFrom(...YAML_CHARS), { maxLength: 120 }).map((parts) => parts.join(''));

const TYPES = BUILTIN_RULE_TYPES.map((t) => t.type);
const anyValue = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer(),
  fc.double(),
  fc.string({ maxLength: 16 }),
  fc.constantFrom(...TYPES, 'mail', 'rcpt', 'data', 'connect', 'auth', 'monitor', 'enforce', '0s', '1m', '-5', '10.0.0.0/33', '::/129', '*.', '*@*', '[', '(?:', 'user', 'client-ip'),
  fc.array(fc.oneof(fc.string({ maxLength: 8 }), fc.integer()), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.oneof(fc.integer(), fc.string({ maxLength: 8 })), { maxKeys: 3 }),
);

/** A rule built from plausible pieces: right keys with wrong values, wrong keys with right values. */
const randomRule = fc.dictionary(
  fc.constantFrom('name', 'type', 'stage', 'params', 'when', 'mode', 'onError', 'timeout', 'extra'),
  fc.oneof(anyValue, fc.dictionary(fc.constantFrom('max', 'per', 'limits', 'key', 'count', 'users', 'groups', 'clientCidrs', 'senderDomains', 'require', 'allow', 'deny', 'domains', 'networks', 'x'), anyValue, { maxKeys: 3 })),
  { maxKeys: 6 },
);

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function keyPaths(value: Json, prefix: Array<string | number> = []): Array<Array<string | number>> {
  if (Array.isArray(value)) return value.flatMap((item, i) => [[...prefix, i], ...keyPaths(item, [...prefix, i])]);
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).flatMap(([key, item]) => [[...prefix, key], ...keyPaths(item, [...prefix, key])]);
  }
  return [];
}

/** Replaces or deletes one node of a shipped policy file. */
function mutate(base: Json, pathIndex: number, remove: boolean, value: Json): Json {
  const copy = structuredClone(base) as Record<string, Json>;
  const paths = keyPaths(copy);
  if (paths.length === 0) return value;
  const path = paths[pathIndex % paths.length]!;
  const parent = path.slice(0, -1).reduce<Json>((node, key) => (node as Record<string | number, Json>)[key]!, copy) as Record<string | number, Json>;
  const key = path[path.length - 1]!;
  if (remove && Array.isArray(parent)) parent.splice(key as number, 1);
  else if (remove) delete parent[key];
  else parent[key] = value;
  return copy;
}

describe('policy loading under random input', () => {
  test('the shipped policy files load, so the mutations below start from valid files', async () => {
    for (const text of SHIPPED) assert.equal(await outcome(text), 'ok');
  });

  test('random YAML-ish text either loads or is refused with a PolicyLoadError', async () => {
    await fc.assert(
      fc.asyncProperty(yamlish, async (text) => {
        await outcome(text);
      }),
      { numRuns: 300 },
    );
  });

  test('random rules of the built-in types either load or are refused with a PolicyLoadError', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(randomRule, { maxLength: 4 }), async (rules) => {
        await outcome(stringifyYaml({ rules }));
      }),
      { numRuns: 300 },
    );
  });

  test('random mutations of the shipped policy files either load or are refused with a PolicyLoadError', async () => {
    const bases = SHIPPED.map((text) => parseYaml(text) as Json);
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: bases.length - 1 }),
        fc.array(fc.record({ pathIndex: fc.nat(), remove: fc.boolean(), value: anyValue as fc.Arbitrary<Json> }), { minLength: 1, maxLength: 4 }),
        async (which, mutations) => {
          const mutated = mutations.reduce<Json>((doc, m) => mutate(doc, m.pathIndex, m.remove, m.value), bases[which] as Json);
          await outcome(stringifyYaml(mutated));
        },
      ),
      { numRuns: 300 },
    );
  });

  test('resource-exhaustion and broken-reference shapes are refused with a PolicyLoadError', async () => {
    const shapes = [
      '*a',
      'rules: *a',
      'rules:\n  - &r { name: a, type: headers }\n  - *r\n',
      ['a: &a [x,x,x,x,x,x,x,x,x]', ...'bcdefghij'.split('').map((c, i) => `${c}: &${c} [${Array(9).fill(`*${'abcdefghij'[i]}`).join(',')}]`), 'rules: []'].join('\n'),
      `rules: ${'['.repeat(5000)}${']'.repeat(5000)}`,
      `rules:\n  - name: ${'x'.repeat(100_000)}\n    type: headers\n`,
    ];
    for (const text of shapes) assert.equal(await outcome(text), 'refused', `expected a refusal for ${JSON.stringify(text.slice(0, 60))}`);
  });
});
