import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, posix, relative, sep } from 'node:path';
import { parse, parseAllDocuments, stringify } from 'yaml';

/**
 * Renders a Helm chart without helm, for the render checks. It implements the part of Go's
 * text/template and of Helm's function library (sprig) that the chart's templates use, with Go's
 * semantics where they matter to the output: `{{-`/`-}}` trim whitespace, a pipeline passes its
 * value as the last argument, `range` walks a map in key order, a field of a missing value is an
 * error, a missing map key prints as nothing (Helm turns "<no value>" into ""). Anything outside
 * the subset fails loudly, so a template using more than this is noticed, not mis-rendered.
 */

type Value = unknown;
type Scope = Map<string, Value>[];

interface Field { kind: 'field'; base: 'dot' | 'var'; name: string; path: string[] }
interface Literal { kind: 'literal'; value: Value }
interface Ident { kind: 'ident'; name: string }
interface Sub { kind: 'sub'; pipeline: Pipeline }
type Arg = Field | Literal | Ident | Sub;
interface Pipeline { decl?: { names: string[]; assign: boolean }; commands: Arg[][] }

type Node =
  | { kind: 'text'; text: string }
  | { kind: 'action'; pipeline: Pipeline }
  | { kind: 'if'; pipeline: Pipeline; then: Node[]; otherwise: Node[] }
  | { kind: 'with'; pipeline: Pipeline; then: Node[]; otherwise: Node[] }
  | { kind: 'range'; pipeline: Pipeline; then: Node[]; otherwise: Node[] };

/** A template error, naming the template it happened in. */
export class TemplateError extends Error {}

/** Helm's `fail` and `required`: the install is refused with this message. */
export class TemplateFailure extends TemplateError {}

// ---------------------------------------------------------------- lexing

type Piece = { kind: 'text'; text: string } | { kind: 'action'; tokens: string[]; source: string };

function lex(source: string, name: string): Piece[] {
  const pieces: Piece[] = [];
  let at = 0;
  let trimNext = false;
  while (at < source.length) {
    const open = source.indexOf('{{', at);
    let text = source.slice(at, open === -1 ? source.length : open);
    if (trimNext) text = text.replace(/^\s+/, '');
    if (open === -1) {
      pieces.push({ kind: 'text', text });
      break;
    }
    let start = open + 2;
    if (source.startsWith('- ', start) || source.startsWith('-\n', start)) {
      text = text.replace(/\s+$/, '');
      start += 1;
    }
    pieces.push({ kind: 'text', text });
    const close = findClose(source, start, name);
    let end = close;
    trimNext = false;
    if (/\s-$/.test(source.slice(start, close))) {
      trimNext = true;
      end = close - 1;
    }
    const inner = source.slice(start, end).trim();
    at = close + 2;
    if (inner.startsWith('/*')) {
      if (!inner.endsWith('*/')) throw new TemplateError(`${name}: unterminated comment`);
      continue;
    }
    pieces.push({ kind: 'action', tokens: tokenize(inner, name), source: inner });
  }
  return pieces;
}

/** The `}}` closing an action, skipping string literals and comments. */
function findClose(source: string, from: number, name: string): number {
  let i = from;
  while (i < source.length) {
    const ch = source[i];
    if (source.startsWith('/*', i)) {
      const end = source.indexOf('*/', i + 2);
      if (end === -1) break;
      i = end + 2;
    } else if (ch === '"') {
      i++;
      while (i < source.length && source[i] !== '"') i += source[i] === '\\' ? 2 : 1;
      i++;
    } else if (ch === '`') {
      i = source.indexOf('`', i + 1) + 1;
      if (i === 0) break;
    } else if (source.startsWith('}}', i)) {
      return i;
    } else {
      i++;
    }
  }
  throw new TemplateError(`${name}: unclosed action`);
}

function tokenize(text: string, name: string): string[] {
  const tokens: string[] = [];
  const pattern = /\s+|"(?:[^"\\]|\\.)*"|`[^`]*`|:=|[|(),=]|[$.]?[A-Za-z0-9_$.\-]*/gy;
  let match: RegExpExecArray | null;
  while (pattern.lastIndex < text.length && (match = pattern.exec(text)) !== null) {
    if (match[0] === '') throw new TemplateError(`${name}: cannot read "${text.slice(pattern.lastIndex)}"`);
    if (!/^\s+$/.test(match[0])) tokens.push(match[0]);
  }
  return tokens;
}

// ---------------------------------------------------------------- parsing

class Parser {
  private index = 0;
  constructor(
    private readonly pieces: Piece[],
    private readonly name: string,
    private readonly defines: Map<string, Node[]>,
  ) {}

  /** Nodes up to an `end`/`else` (returned as the stop keyword) or the end of input. */
  parseList(): { nodes: Node[]; stop: string[] | undefined } {
    const nodes: Node[] = [];
    while (this.index < this.pieces.length) {
      const piece = this.pieces[this.index++]!;
      if (piece.kind === 'text') {
        if (piece.text) nodes.push({ kind: 'text', text: piece.text });
        continue;
      }
      const [keyword, ...rest] = piece.tokens;
      switch (keyword) {
        case 'end':
        case 'else':
          return { nodes, stop: piece.tokens };
        case 'if':
        case 'with':
        case 'range':
          nodes.push(this.parseBlock(keyword, rest));
          break;
        case 'define': {
          const defined = parseString(rest[0] ?? '', this.name);
          const body = this.parseList();
          if (body.stop?.[0] !== 'end') throw new TemplateError(`${this.name}: define "${defined}" without end`);
          this.defines.set(defined, body.nodes);
          break;
        }
        case 'template':
        case 'block':
          throw new TemplateError(`${this.name}: "${keyword}" is outside the supported subset; use include`);
        default:
          nodes.push({ kind: 'action', pipeline: parsePipeline(piece.tokens, this.name) });
      }
    }
    return { nodes, stop: undefined };
  }

  private parseBlock(kind: 'if' | 'with' | 'range', tokens: string[]): Node {
    const pipeline = parsePipeline(tokens, this.name);
    const then = this.parseList();
    let otherwise: Node[] = [];
    if (then.stop?.[0] === 'else') {
      const [, nested, ...rest] = then.stop;
      if (nested === 'if' || nested === 'with') {
        // `else if` is an if inside the else branch that shares the outer `end`.
        otherwise = [this.parseBlock(nested, rest)];
      } else {
        const tail = this.parseList();
        if (tail.stop?.[0] !== 'end') throw new TemplateError(`${this.name}: ${kind} without end`);
        otherwise = tail.nodes;
      }
    } else if (then.stop?.[0] !== 'end') {
      throw new TemplateError(`${this.name}: ${kind} without end`);
    }
    return { kind, pipeline, then: then.nodes, otherwise };
  }
}

function parseString(token: string, name: string): string {
  if (token.startsWith('`')) return token.slice(1, -1);
  if (token.startsWith('"')) return JSON.parse(token) as string;
  throw new TemplateError(`${name}: expected a string, got ${token}`);
}

function parsePipeline(tokens: string[], name: string): Pipeline {
  let rest = tokens;
  let decl: Pipeline['decl'];
  const declAt = tokens.findIndex((t) => t === ':=' || t === '=');
  if (declAt > 0 && tokens.slice(0, declAt).every((t) => t.startsWith('$') || t === ',')) {
    decl = { names: tokens.slice(0, declAt).filter((t) => t !== ','), assign: tokens[declAt] === '=' };
    rest = tokens.slice(declAt + 1);
  }
  const { commands, next } = parseCommands(rest, 0, name);
  if (next !== rest.length) throw new TemplateError(`${name}: unexpected "${rest[next]}"`);
  return decl ? { decl, commands } : { commands };
}

function parseCommands(tokens: string[], from: number, name: string): { commands: Arg[][]; next: number } {
  const commands: Arg[][] = [[]];
  let i = from;
  while (i < tokens.length && tokens[i] !== ')') {
    const token = tokens[i]!;
    if (token === '|') {
      commands.push([]);
      i++;
      continue;
    }
    if (token === '(') {
      const inner = parseCommands(tokens, i + 1, name);
      if (tokens[inner.next] !== ')') throw new TemplateError(`${name}: unclosed (`);
      commands.at(-1)!.push({ kind: 'sub', pipeline: { commands: inner.commands } });
      i = inner.next + 1;
      continue;
    }
    commands.at(-1)!.push(parseArg(token, name));
    i++;
  }
  if (commands.some((command) => command.length === 0)) throw new TemplateError(`${name}: empty command in pipeline`);
  return { commands, next: i };
}

function parseArg(token: string, name: string): Arg {
  if (token.startsWith('"') || token.startsWith('`')) return { kind: 'literal', value: parseString(token, name) };
  if (/^-?\d+(\.\d+)?$/.test(token)) return { kind: 'literal', value: Number(token) };
  if (token === 'true' || token === 'false') return { kind: 'literal', value: token === 'true' };
  if (token === 'nil') return { kind: 'literal', value: null };
  if (token === '.') return { kind: 'field', base: 'dot', name: '', path: [] };
  if (token.startsWith('.')) return { kind: 'field', base: 'dot', name: '', path: token.slice(1).split('.') };
  if (token.startsWith('$')) {
    const [variable, ...path] = token.split('.');
    return { kind: 'field', base: 'var', name: variable!, path };
  }
  if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(token)) return { kind: 'ident', name: token };
  throw new TemplateError(`${name}: cannot parse "${token}"`);
}

// ---------------------------------------------------------------- values

function truthy(value: Value): boolean {
  if (value === null || value === undefined || value === false || value === 0 || value === '') return false;
  if (Array.isArray(value)) return value.length > 0;
  if (typeof value === 'object') return Object.keys(value).length > 0;
  return true;
}

function isMap(value: Value): value is Record<string, Value> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function printed(value: Value, name: string): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  throw new TemplateError(`${name}: a map or list is printed directly; use toYaml`);
}

function toText(value: Value): string {
  if (value === null || value === undefined) return '';
  return typeof value === 'string' ? value : String(value);
}

function goQuote(value: Value): string {
  return JSON.stringify(toText(value));
}

/** Go's fmt verbs the chart uses: %s %d %v %q. */
function sprintf(format: string, args: Value[]): string {
  let next = 0;
  return format.replace(/%([sdvq%])/g, (_, verb: string) => {
    if (verb === '%') return '%';
    const arg = args[next++];
    return verb === 'q' ? goQuote(arg) : toText(arg);
  });
}

function compare(a: Value, b: Value, name: string): number {
  if (typeof a !== typeof b || (typeof a !== 'number' && typeof a !== 'string')) {
    throw new TemplateError(`${name}: incompatible types for comparison: ${typeof a} and ${typeof b}`);
  }
  const [x, y] = [a, b] as [number | string, number | string];
  return x < y ? -1 : x > y ? 1 : 0;
}

function equal(a: Value, b: Value, name: string): boolean {
  if (a === null || a === undefined || b === null || b === undefined) return a == b;
  if (typeof a !== typeof b) throw new TemplateError(`${name}: incompatible types for comparison: ${typeof a} and ${typeof b}`);
  return a === b;
}

function deepCopy<T>(value: T): T {
  return value === undefined ? value : (structuredClone(value) as T);
}

/** Helm's values coalescing: maps merge key by key, anything else replaces, null deletes. */
export function mergeValues(base: Value, override: Value): Value {
  if (!isMap(base) || !isMap(override)) return override === undefined ? base : deepCopy(override);
  const merged: Record<string, Value> = deepCopy(base);
  for (const [key, value] of Object.entries(override)) {
    if (value === null) delete merged[key];
    else merged[key] = key in merged ? mergeValues(merged[key], value) : deepCopy(value);
  }
  return merged;
}

function globToRegExp(pattern: string): RegExp {
  const escaped = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]');
  return new RegExp(`^${escaped}$`);
}

// ---------------------------------------------------------------- execution

type Lazy = () => Value;
type Fn = (args: Lazy[], name: string) => Value;

/** A function that takes its arguments evaluated. */
const eager =
  (fn: (args: Value[], name: string) => Value): Fn =>
  (args, name) =>
    fn(
      args.map((arg) => arg()),
      name,
    );

class Renderer {
  private readonly functions: Record<string, Fn>;

  constructor(private readonly defines: Map<string, Node[]>) {
    const str = (v: Value) => toText(v);
    const num = (v: Value, name: string): number => {
      const n = typeof v === 'number' ? v : Number.parseInt(toText(v), 10);
      if (Number.isNaN(n)) throw new TemplateError(`${name}: not a number: ${String(v)}`);
      return n;
    };
    this.functions = {
      include: eager(([template, data], name) => this.include(str(template), data, name)),
      required: eager(([message, value]) => {
        if (value === null || value === undefined || value === '') throw new TemplateFailure(str(message));
        return value;
      }),
      fail: eager(([message]) => {
        throw new TemplateFailure(str(message));
      }),
      toYaml: eager(([value]) => (value === undefined ? 'null' : stringify(value, { lineWidth: 0 }).replace(/\n$/, ''))),
      toJson: eager(([value]) => JSON.stringify(value ?? null)),
      indent: eager(([n, text]) => str(text).replace(/^/gm, ' '.repeat(num(n, '')))),
      nindent: eager(([n, text]) => `\n${str(text).replace(/^/gm, ' '.repeat(num(n, '')))}`),
      default: eager(([fallback, given]) => (truthy(given) ? given : fallback)),
      empty: eager(([value]) => !truthy(value)),
      quote: eager((values) => values.filter((v) => v !== null && v !== undefined).map(goQuote).join(' ')),
      squote: eager((values) => values.filter((v) => v !== null && v !== undefined).map((v) => `'${str(v)}'`).join(' ')),
      printf: eager(([format, ...args]) => sprintf(str(format), args)),
      print: eager((values) => values.map(str).join('')),
      toString: eager(([value]) => str(value)),
      trunc: eager(([n, text]) => str(text).slice(0, num(n, ''))),
      trimSuffix: eager(([suffix, text]) => (str(text).endsWith(str(suffix)) && str(suffix) ? str(text).slice(0, -str(suffix).length) : str(text))),
      trimPrefix: eager(([prefix, text]) => (str(text).startsWith(str(prefix)) ? str(text).slice(str(prefix).length) : str(text))),
      replace: eager(([from, to, text]) => str(text).split(str(from)).join(str(to))),
      contains: eager(([part, text]) => str(text).includes(str(part))),
      hasPrefix: eager(([prefix, text]) => str(text).startsWith(str(prefix))),
      lower: eager(([text]) => str(text).toLowerCase()),
      base: eager(([path]) => posix.basename(str(path))),
      atoi: eager(([text]) => {
        const n = Number.parseInt(str(text), 10);
        return Number.isNaN(n) ? 0 : n;
      }),
      int: eager(([value], name) => num(value, name)),
      add: eager((values, name) => values.reduce<number>((sum, v) => sum + num(v, name), 0)),
      mul: eager((values, name) => values.reduce<number>((product, v) => product * num(v, name), 1)),
      sub: eager(([a, b], name) => num(a, name) - num(b, name)),
      len: eager(([value]) => (Array.isArray(value) || typeof value === 'string' ? value.length : isMap(value) ? Object.keys(value).length : 0)),
      dict: eager((values) => {
        const map: Record<string, Value> = {};
        for (let i = 0; i < values.length; i += 2) map[str(values[i])] = values[i + 1];
        return map;
      }),
      list: eager((values) => [...values]),
      append: eager(([list, value], name) => {
        if (!Array.isArray(list)) throw new TemplateError(`${name}: append to a non-list`);
        return [...list, value];
      }),
      set: eager(([map, key, value], name) => {
        if (!isMap(map)) throw new TemplateError(`${name}: set on a non-map`);
        map[str(key)] = value;
        return map;
      }),
      get: eager(([map, key]) => (isMap(map) && str(key) in map ? map[str(key)] : '')),
      hasKey: eager(([map, key]) => isMap(map) && str(key) in map),
      deepCopy: eager(([value]) => deepCopy(value)),
      sha256sum: eager(([text]) => createHash('sha256').update(str(text)).digest('hex')),
      b64enc: eager(([text]) => Buffer.from(str(text)).toString('base64')),
      eq: eager(([first, ...others], name) => others.some((other) => equal(first, other, name))),
      ne: eager(([a, b], name) => !equal(a, b, name)),
      lt: eager(([a, b], name) => compare(a, b, name) < 0),
      le: eager(([a, b], name) => compare(a, b, name) <= 0),
      gt: eager(([a, b], name) => compare(a, b, name) > 0),
      ge: eager(([a, b], name) => compare(a, b, name) >= 0),
      not: eager(([value]) => !truthy(value)),
      // Go evaluates `and`/`or` arguments only as far as needed.
      and: (args) => {
        let value: Value = true;
        for (const arg of args) if (!truthy((value = arg()))) return value;
        return value;
      },
      or: (args) => {
        let value: Value = false;
        for (const arg of args) if (truthy((value = arg()))) return value;
        return value;
      },
    };
  }

  include(template: string, data: Value, name: string): string {
    const body = this.defines.get(template);
    if (!body) throw new TemplateError(`${name}: no template "${template}"`);
    return this.run(body, data, [new Map([['$', data]])], template);
  }

  run(nodes: Node[], dot: Value, scope: Scope, name: string): string {
    let out = '';
    for (const node of nodes) {
      switch (node.kind) {
        case 'text':
          out += node.text;
          break;
        case 'action': {
          const value = this.pipeline(node.pipeline, dot, scope, name);
          if (!node.pipeline.decl) out += printed(value, name);
          break;
        }
        case 'if': {
          const inner = [...scope, new Map<string, Value>()];
          const value = this.pipeline(node.pipeline, dot, inner, name);
          out += this.run(truthy(value) ? node.then : node.otherwise, dot, inner, name);
          break;
        }
        case 'with': {
          const inner = [...scope, new Map<string, Value>()];
          const value = this.pipeline(node.pipeline, dot, inner, name);
          out += truthy(value) ? this.run(node.then, value, inner, name) : this.run(node.otherwise, dot, inner, name);
          break;
        }
        case 'range':
          out += this.range(node, dot, scope, name);
          break;
      }
    }
    return out;
  }

  private range(node: Extract<Node, { kind: 'range' }>, dot: Value, scope: Scope, name: string): string {
    const { decl, commands } = node.pipeline;
    const collection = this.pipeline({ commands }, dot, scope, name);
    let entries: Array<[Value, Value]>;
    if (Array.isArray(collection)) entries = collection.map((item, i) => [i, item]);
    else if (isMap(collection)) entries = Object.keys(collection).sort().map((key) => [key, collection[key]]);
    else if (collection === null || collection === undefined) entries = [];
    else throw new TemplateError(`${name}: range over ${typeof collection}`);
    if (entries.length === 0) return this.run(node.otherwise, dot, [...scope, new Map()], name);
    let out = '';
    for (const [key, item] of entries) {
      const vars = new Map<string, Value>();
      if (decl?.names.length === 1) vars.set(decl.names[0]!, item);
      if (decl?.names.length === 2) {
        vars.set(decl.names[0]!, key);
        vars.set(decl.names[1]!, item);
      }
      out += this.run(node.then, item, [...scope, vars], name);
    }
    return out;
  }

  private pipeline(pipeline: Pipeline, dot: Value, scope: Scope, name: string): Value {
    let value: Value;
    let piped = false;
    for (const command of pipeline.commands) {
      value = this.command(command, dot, scope, name, piped ? [() => value] : []);
      piped = true;
    }
    if (pipeline.decl) {
      const [variable] = pipeline.decl.names;
      if (pipeline.decl.assign) {
        const owner = [...scope].reverse().find((vars) => vars.has(variable!));
        if (!owner) throw new TemplateError(`${name}: undefined variable ${variable}`);
        owner.set(variable!, value);
      } else {
        scope.at(-1)!.set(variable!, value);
      }
    }
    return value;
  }

  private command(command: Arg[], dot: Value, scope: Scope, name: string, piped: Lazy[]): Value {
    const [head, ...rest] = command;
    const args = [...rest.map((arg) => () => this.arg(arg, dot, scope, name)), ...piped];
    if (head!.kind === 'ident') {
      const fn = this.functions[head!.name];
      if (!fn) throw new TemplateError(`${name}: function "${head!.name}" is outside the supported subset`);
      return fn(args, name);
    }
    const value = this.arg(head!, dot, scope, name);
    if (typeof value === 'function') return (value as (...a: Value[]) => Value)(...args.map((arg) => arg()));
    if (args.length > 0) throw new TemplateError(`${name}: ${describe(head!)} is not a function`);
    return value;
  }

  private arg(arg: Arg, dot: Value, scope: Scope, name: string): Value {
    switch (arg.kind) {
      case 'literal':
        return arg.value;
      case 'sub':
        return this.pipeline(arg.pipeline, dot, scope, name);
      case 'ident':
        return this.command([arg], dot, scope, name, []);
      case 'field': {
        let value: Value = dot;
        if (arg.base === 'var') {
          const owner = [...scope].reverse().find((vars) => vars.has(arg.name));
          if (!owner) throw new TemplateError(`${name}: undefined variable ${arg.name}`);
          value = owner.get(arg.name);
        }
        for (const [i, key] of arg.path.entries()) {
          if (value === null || value === undefined) {
            throw new TemplateError(`${name}: nil pointer evaluating ${describe(arg)}: ${arg.path.slice(0, i).join('.') || '.'} has no value`);
          }
          if (typeof value !== 'object') throw new TemplateError(`${name}: can't evaluate field ${key} in ${typeof value}`);
          const next = (value as Record<string, Value>)[key];
          value = typeof next === 'function' ? (next as (...a: Value[]) => Value).bind(value) : next;
        }
        return value;
      }
    }
  }
}

function describe(arg: Arg): string {
  if (arg.kind === 'field') return `${arg.base === 'var' ? arg.name : ''}.${arg.path.join('.')}`;
  return arg.kind;
}

// ---------------------------------------------------------------- charts

export interface RenderedChart {
  /** Each template's output, by its path under templates/, blank ones included. */
  manifests: Map<string, string>;
  /** Every non-empty YAML document of every template, parsed. */
  documents: Array<{ template: string; object: Record<string, unknown> }>;
  values: Record<string, unknown>;
}

export interface RenderOptions {
  /** Values files merged over the chart's values.yaml, in order. */
  values?: Array<Record<string, unknown>>;
  releaseName?: string;
  namespace?: string;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const full = join(dir, entry);
    return statSync(full).isDirectory() ? filesUnder(full) : [full];
  });
}

/** Render every template of the chart in `chartDir` as `helm template` would. */
export function renderChart(chartDir: string, options: RenderOptions = {}): RenderedChart {
  const chart = parse(readFileSync(join(chartDir, 'Chart.yaml'), 'utf8')) as Record<string, string>;
  const defaults = (parse(readFileSync(join(chartDir, 'values.yaml'), 'utf8')) ?? {}) as Record<string, unknown>;
  const values = (options.values ?? []).reduce<Value>((merged, next) => mergeValues(merged, next), defaults) as Record<string, unknown>;

  const files = new Map<string, string>();
  for (const file of filesUnder(chartDir)) {
    const path = relative(chartDir, file).split(sep).join('/');
    if (!path.startsWith('templates/')) files.set(path, readFileSync(file, 'utf8'));
  }
  const filesObject = {
    Get: (path: string) => files.get(path) ?? '',
    Glob: (pattern: string) => {
      const matcher = globToRegExp(pattern);
      return Object.fromEntries([...files].filter(([path]) => matcher.test(path)));
    },
  };

  const defines = new Map<string, Node[]>();
  const templates = filesUnder(join(chartDir, 'templates'))
    .map((file) => relative(join(chartDir, 'templates'), file).split(sep).join('/'))
    .sort();
  const bodies = new Map<string, Node[]>();
  for (const template of templates) {
    const source = readFileSync(join(chartDir, 'templates', template), 'utf8');
    const parsed = new Parser(lex(source, template), template, defines).parseList();
    if (parsed.stop) throw new TemplateError(`${template}: unexpected {{ ${parsed.stop.join(' ')} }}`);
    bodies.set(template, parsed.nodes);
  }

  const renderer = new Renderer(defines);
  const manifests = new Map<string, string>();
  const documents: RenderedChart['documents'] = [];
  for (const template of templates) {
    if (posix.basename(template).startsWith('_')) continue;
    const root = {
      Values: values,
      Chart: { Name: chart.name, Version: chart.version, AppVersion: chart.appVersion, Description: chart.description },
      Release: { Name: options.releaseName ?? 'mail', Namespace: options.namespace ?? 'postern', Service: 'Helm', IsInstall: true, IsUpgrade: false, Revision: 1 },
      Files: filesObject,
      Template: { Name: `${chart.name}/templates/${template}`, BasePath: `${chart.name}/templates` },
    };
    const output = renderer.run(bodies.get(template)!, root, [new Map([['$', root]])], template);
    manifests.set(template, output);
    for (const doc of parseAllDocuments(output)) {
      if (doc.errors.length > 0) throw new TemplateError(`${template} renders YAML that does not parse: ${doc.errors[0]!.message}\n${output}`);
      const object = doc.toJS() as Record<string, unknown> | null;
      if (object !== null) documents.push({ template, object });
    }
  }
  return { manifests, documents, values };
}

/** Render one template text with the given data, for testing the renderer itself. */
export function renderTemplate(source: string, data: Value, helpers = ''): string {
  const defines = new Map<string, Node[]>();
  new Parser(lex(helpers, 'helpers'), 'helpers', defines).parseList();
  const parsed = new Parser(lex(source, 'template'), 'template', defines).parseList();
  if (parsed.stop) throw new TemplateError(`template: unexpected {{ ${parsed.stop.join(' ')} }}`);
  return new Renderer(defines).run(parsed.nodes, data, [new Map([['$', data]])], 'template');
}
