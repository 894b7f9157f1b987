import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { context, loadProblems, policyFrom } from './support.js';

/** A complete custom rule type, as an operator would drop it next to the policy files. */
const DOMAIN_BLOCK_MJS = `
// Refuses one recipient domain, named in the params.
export default {
  type: 'block-domain',
  stages: ['rcpt'],
  description: 'refuses mail to one domain',
  params(input) {
    if (typeof input.domain !== 'string') throw new Error('params.domain must be a domain name');
    return { domain: input.domain.toLowerCase() };
  },
  create(params, deps, instance) {
    return {
      evaluate(ctx) {
        if (ctx.recipient && ctx.recipient.toLowerCase().endsWith('@' + params.domain)) {
          return { action: 'reject', code: 550, enhanced: '5.7.1', text: 'mail to ' + params.domain + ' is not allowed' };
        }
        return { action: 'continue', annotations: { tags: [instance.name + '-checked-at-' + deps.clock.now()] } };
      },
    };
  },
};
`;

describe('custom rule types', () => {
  test('a .mjs rule type in the policy directory is loaded and runs like a built-in', async (t) => {
    const { engine, set, clock, cleanup } = await policyFrom({
      'block.mjs': DOMAIN_BLOCK_MJS,
      'p.yaml': 'rules:\n  - { name: no-rivals, type: block-domain, params: { domain: rival.example } }\n',
    });
    t.after(cleanup);
    assert.equal(set.types.get('block-domain')?.description, 'refuses mail to one domain');
    const refused = await engine.evaluate(context(clock, { stage: 'rcpt', recipient: 'ceo@Rival.example' }));
    assert.deepEqual(refused.verdict, { action: 'reject', code: 550, enhanced: '5.7.1', text: 'mail to rival.example is not allowed' });
    const allowed = await engine.evaluate(context(clock, { stage: 'rcpt', recipient: 'friend@partner.example' }));
    assert.equal(allowed.verdict.action, 'continue');
    assert.deepEqual(allowed.annotations.tags, [`no-rivals-checked-at-${clock.now()}`]);
  });

  test('a custom type\'s params function is applied when the policy loads', async () => {
    const problems = await loadProblems({
      'block.mjs': DOMAIN_BLOCK_MJS,
      'p.yaml': 'rules:\n  - name: no-rivals\n    type: block-domain\n    params: { domian: rival.example }\n',
    });
    assert.deepEqual(problems, ['p.yaml:4: rules[0].params: params.domain must be a domain name']);
  });

  test('a module with a syntax error is a load error naming its file and line', async () => {
    const problems = await loadProblems({
      'broken.mjs': 'export default {\n  type: "broken",\n  stages: [\'mail\'\n  create() {}\n};\n',
      'p.yaml': 'rules: []\n',
    });
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /^broken\.mjs:4: cannot import the module: SyntaxError: /);
  });

  test('a module that throws while it is imported is a load error with its message', async () => {
    const problems = await loadProblems({ 'throws.mjs': '\n\nthrow new Error("missing setting");\n' });
    assert.deepEqual(problems, ['throws.mjs:3: cannot import the module: Error: missing setting']);
  });

  test('a module whose default export is not a rule type is refused with what is wrong', async () => {
    const problems = await loadProblems({
      'no-default.mjs': 'export const type = "x";\n',
      'bad-shape.mjs': 'export default { type: "Bad_Name", stages: ["mail", "helo"], params: {}, create: 1 };\n',
    });
    assert.deepEqual(problems, [
      'bad-shape.mjs: the default export is not a rule type: type must be a kebab-case name, e.g. "my-rule"; ' +
        'stages has unknown stages "helo"; known: connect, auth, mail, rcpt, data; ' +
        'params must be a zod schema (with safeParse) or a function that returns the params or throws; ' +
        'create must be a function (params, deps) returning { evaluate(ctx) }',
      'no-default.mjs: the module has no default export; export default { type, stages, params, create }',
    ]);
  });

  test('a custom type may not take a built-in\'s name, nor another custom type\'s', async () => {
    const module = (name: string) => `export default { type: '${name}', stages: ['mail'], params: (p) => p, create: () => ({ evaluate: () => ({ action: 'continue' }) }) };\n`;
    const problems = await loadProblems({ 'a.mjs': module('answer'), 'b.mjs': module('mine'), 'c.mjs': module('mine') });
    assert.equal(problems.length, 2);
    assert.equal(problems[0], 'a.mjs: the rule type "answer" is a built-in; give the custom type another name');
    assert.match(problems[1]!, /^c\.mjs: the rule type "mine" is already defined by .*b\.mjs$/);
  });
});
