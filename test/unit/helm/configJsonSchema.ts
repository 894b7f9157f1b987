import { z } from 'zod';
import { configSchema } from '../../../src/config/schema.js';

/**
 * Postern's configuration schema (src/config/schema.ts) as the JSON Schema that
 * helm/postern/values.schema.json embeds under definitions.posternConfig, so that a misspelt or
 * mistyped `config` value fails at `helm install` rather than when the pod starts. Defaults are
 * dropped (they are the gateway's business, and one is this machine's host name), and the
 * look-ahead in the host name pattern is rewritten as maxLength: Helm validates with Go's RE2
 * regular expressions, which have no look-around, and a pattern it cannot compile fails every
 * install. And the smarthost password may be left out: the chart writes `${SMARTHOST_PASS}` there
 * itself when delivery.smarthost.existingSecret is set (the gateway still requires it at start).
 */
export function posternConfigJsonSchema(): unknown {
  return adapt(z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any', target: 'draft-7' }), '');
}

const LENGTH_LOOKAHEAD = '^(?=.{1,253}$)';

const SMARTHOST_AUTH = '/properties/delivery/properties/smarthost/properties/auth';

function adapt(node: unknown, path: string): unknown {
  if (Array.isArray(node)) return node.map((item, i) => adapt(item, `${path}/${i}`));
  if (node === null || typeof node !== 'object') return node;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === 'default' || key === '$schema') continue;
    if (key === 'pattern' && typeof value === 'string' && value.startsWith(LENGTH_LOOKAHEAD)) {
      out.pattern = `^${value.slice(LENGTH_LOOKAHEAD.length)}`;
      out.maxLength = 253;
      continue;
    }
    if (key === 'required' && path === SMARTHOST_AUTH && Array.isArray(value)) {
      out.required = value.filter((name) => name !== 'pass');
      continue;
    }
    out[key] = adapt(value, `${path}/${key}`);
  }
  return out;
}
