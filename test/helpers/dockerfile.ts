/**
 * Just enough of the Dockerfile and .dockerignore languages to check the image's contract
 * without Docker: instructions with their continuation lines joined, stages split at FROM,
 * exec-form arguments, and the build context's include/exclude rules.
 * https://docs.docker.com/reference/dockerfile/ and .../build/concepts/context/#dockerignore-files
 */

export interface DockerInstruction {
  /** Upper-cased: FROM, RUN, COPY... */
  keyword: string;
  /** Everything after the keyword, continuation lines joined with a space. */
  args: string;
  /** 1-based line of the keyword, for messages. */
  line: number;
}

export interface DockerStage {
  /** The image after global ARG defaults are substituted, e.g. node:20-bookworm-slim. */
  image: string;
  /** The `AS name`, when given. */
  name?: string;
  instructions: DockerInstruction[];
}

export interface ParsedDockerfile {
  /** Global ARGs (before the first FROM) with their defaults. */
  args: Record<string, string>;
  stages: DockerStage[];
}

export function parseDockerfile(text: string): ParsedDockerfile {
  const instructions: DockerInstruction[] = [];
  let pending: DockerInstruction | undefined;
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    // Comment lines end nothing: inside a continuation they are simply skipped, as Docker does.
    if (line.startsWith('#')) return;
    if (pending === undefined) {
      if (line === '') return;
      const match = /^([A-Za-z]+)\s*(.*)$/.exec(line);
      if (!match) throw new Error(`Dockerfile line ${index + 1}: not an instruction: ${line}`);
      pending = { keyword: match[1]!.toUpperCase(), args: '', line: index + 1 };
      appendPart(pending, match[2]!);
    } else {
      appendPart(pending, line);
    }
    if (!line.endsWith('\\')) {
      instructions.push(pending);
      pending = undefined;
    }
  });
  if (pending) instructions.push(pending);

  const args: Record<string, string> = {};
  const stages: DockerStage[] = [];
  for (const instruction of instructions) {
    if (instruction.keyword === 'FROM') {
      const [image = '', as, name] = instruction.args.split(/\s+/).filter((word) => !word.startsWith('--'));
      const expanded = image.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (_whole, arg: string) => args[arg] ?? '');
      stages.push({ image: expanded, ...(as?.toUpperCase() === 'AS' && name !== undefined && { name }), instructions: [] });
    } else if (stages.length === 0) {
      if (instruction.keyword === 'ARG') {
        const [name = '', value = ''] = instruction.args.split('=', 2);
        args[name.trim()] = value.trim();
      }
    } else {
      stages[stages.length - 1]!.instructions.push(instruction);
    }
  }
  return { args, stages };
}

function appendPart(instruction: DockerInstruction, part: string): void {
  const text = part.replace(/\\$/, '').trim();
  if (text !== '') instruction.args = instruction.args === '' ? text : `${instruction.args} ${text}`;
}

/** The arguments of an exec-form instruction (`["node", "x"]`); undefined for shell form. */
export function execForm(args: string): string[] | undefined {
  if (!args.startsWith('[')) return undefined;
  const parsed: unknown = JSON.parse(args);
  if (!Array.isArray(parsed) || !parsed.every((item) => typeof item === 'string')) {
    throw new Error(`not a JSON array of strings: ${args}`);
  }
  return parsed;
}

/** A HEALTHCHECK's options (--interval=30s) and the exec-form command after CMD. */
export function healthcheck(instruction: DockerInstruction): { options: Record<string, string>; command: string[] } {
  const options: Record<string, string> = {};
  let rest = instruction.args;
  for (;;) {
    const option = /^--([a-z-]+)=(\S+)\s+/.exec(rest);
    if (!option) break;
    options[option[1]!] = option[2]!;
    rest = rest.slice(option[0].length);
  }
  const cmd = /^CMD\s+(.*)$/.exec(rest);
  const command = cmd ? execForm(cmd[1]!) : undefined;
  if (!command) throw new Error(`HEALTHCHECK on line ${instruction.line} has no exec-form CMD: ${instruction.args}`);
  return { options, command };
}

/** The instructions of one keyword in a stage. */
export function instructionsOf(stage: DockerStage, keyword: string): DockerInstruction[] {
  return stage.instructions.filter((instruction) => instruction.keyword === keyword);
}

/** A COPY's flags (--from=build) and its sources and destination. */
export function copyParts(instruction: DockerInstruction): { flags: Record<string, string>; sources: string[]; destination: string } {
  const exec = execForm(instruction.args);
  const words = exec ?? instruction.args.split(/\s+/);
  const flags: Record<string, string> = {};
  const rest: string[] = [];
  for (const word of words) {
    const flag = /^--([a-z-]+)(?:=(.*))?$/.exec(word);
    if (flag && rest.length === 0) flags[flag[1]!] = flag[2] ?? 'true';
    else rest.push(word);
  }
  const destination = rest.pop();
  if (destination === undefined || rest.length === 0) throw new Error(`COPY on line ${instruction.line} needs a source and a destination`);
  return { flags, sources: rest, destination };
}

/**
 * The build context's filter from a .dockerignore text: whether a path (relative, with `/`)
 * is sent to the builder. As Docker does: the last pattern that matches the path or one of its
 * parent directories decides, `!` re-includes, `*` and `?` stay within one path segment and
 * `**` spans any number of them.
 */
export function dockerignoreFilter(text: string): (path: string) => boolean {
  const patterns = text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const negated = line.startsWith('!');
      const pattern = (negated ? line.slice(1) : line).trim().replace(/^\/+/, '').replace(/\/+$/, '');
      return { negated, regex: globToRegex(pattern) };
    });
  return (path) => {
    const segments = path.split('/');
    const candidates = segments.map((_segment, i) => segments.slice(0, i + 1).join('/'));
    let included = true;
    for (const { negated, regex } of patterns) {
      if (candidates.some((candidate) => regex.test(candidate))) included = negated;
    }
    return included;
  };
}

function globToRegex(pattern: string): RegExp {
  let source = '';
  for (let i = 0; i < pattern.length; i += 1) {
    const char = pattern[i]!;
    if (char === '*' && pattern[i + 1] === '*') {
      // `**/` matches zero or more whole directories; a trailing `**` matches everything below.
      if (pattern[i + 2] === '/') {
        source += '(?:.*/)?';
        i += 2;
      } else {
        source += '.*';
        i += 1;
      }
    } else if (char === '*') {
      source += '[^/]*';
    } else if (char === '?') {
      source += '[^/]';
    } else {
      source += char.replace(/[.+^${}()|[\]\\]/g, '\\$&');
    }
  }
  return new RegExp(`^${source}$`);
}
