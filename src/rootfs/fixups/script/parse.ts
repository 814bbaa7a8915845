/**
 * A parser for the POSIX shell language as maintainer scripts use it, producing a syntax tree
 * the interpreter (interpret.ts) walks — nothing is ever executed on the host.
 *
 * Covered: simple commands with assignments and redirections; pipelines, `!`, `&&`/`||`, `;`,
 * `&` and newlines; `if`/`elif`/`else`, `for`, `while`/`until`, `case` (with `|` patterns and
 * `;;`), `{ }` groups, `( )` subshells, function definitions; words with single and double
 * quotes, backslashes, `$name`/`${name}`/`$1`, the `${x:-y}`-family operators, `${#x}`,
 * `${x#p}`/`${x%p}` trims, `$(...)` and backquote substitutions (parsed recursively), `$((...))`
 * (kept as text: the interpreter treats it as unknown); here-documents (`<<`, `<<-`, quoted
 * delimiters) with their bodies. A syntax error throws {@link ShellSyntaxError}: the caller
 * reports the script as not understood rather than guessing.
 */

/** One part of a word. `q` says whether it was quoted (no field splitting or globbing). */
export type Part =
  | { k: "lit"; text: string; q: boolean }
  | { k: "param"; name: string; op?: ParamOp; arg?: Word; q: boolean }
  | { k: "cmd"; body: List; src: string; q: boolean }
  | { k: "arith"; src: string; q: boolean };

/** `${x:-y}` and friends (`len` is `${#x}`). */
export type ParamOp = ":-" | "-" | ":=" | "=" | ":+" | "+" | ":?" | "?" | "#" | "##" | "%" | "%%" | "len";

export interface Word {
  parts: Part[];
  /** The word as written, for messages. */
  raw: string;
}

export interface Redirect {
  fd?: number;
  op: "<" | ">" | ">>" | ">|" | "<>" | ">&" | "<&" | "<<" | "<<-";
  target: Word;
  /** For `<<`: the body, expanded unless the delimiter was quoted. */
  heredoc?: { body: string; expand: boolean };
}

export interface SimpleCommand {
  type: "simple";
  assigns: Array<{ name: string; value: Word }>;
  words: Word[];
  redirects: Redirect[];
  line: number;
}

export interface Pipeline {
  type: "pipeline";
  negate: boolean;
  commands: Command[];
  line: number;
}

export interface AndOr {
  type: "andor";
  first: Pipeline;
  rest: Array<{ op: "&&" | "||"; pipeline: Pipeline }>;
  line: number;
}

export interface List {
  type: "list";
  items: Array<{ cmd: AndOr; async: boolean }>;
}

export interface IfCommand {
  type: "if";
  branches: Array<{ cond: List; body: List }>;
  otherwise?: List;
  redirects: Redirect[];
  line: number;
}
export interface ForCommand {
  type: "for";
  name: string;
  /** Undefined for `for x; do` (the positional parameters). */
  words?: Word[];
  body: List;
  redirects: Redirect[];
  line: number;
}
export interface LoopCommand {
  type: "while" | "until";
  cond: List;
  body: List;
  redirects: Redirect[];
  line: number;
}
export interface CaseCommand {
  type: "case";
  word: Word;
  items: Array<{ patterns: Word[]; body: List }>;
  redirects: Redirect[];
  line: number;
}
export interface GroupCommand {
  type: "group" | "subshell";
  body: List;
  redirects: Redirect[];
  line: number;
}
export interface FunctionDef {
  type: "function";
  name: string;
  body: Command;
  line: number;
}

export type Command = SimpleCommand | IfCommand | ForCommand | LoopCommand | CaseCommand | GroupCommand | FunctionDef;

/** A script the parser could not read. */
export class ShellSyntaxError extends Error {
  constructor(
    message: string,
    readonly line: number,
  ) {
    super(`line ${line}: ${message}`);
    this.name = "ShellSyntaxError";
  }
}

type Token = { t: "word"; w: Word; line: number } | { t: "op"; op: string; line: number; fd?: number } | { t: "eof"; line: number };

const RESERVED_END = new Set(["then", "else", "elif", "fi", "do", "done", "esac", "}"]);
const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Parses a whole script. */
export function parseScript(src: string): List {
  const p = new Parser(src);
  const list = p.program();
  return list;
}

class Parser {
  private i = 0;
  private line = 1;
  private peeked: Token | undefined;
  private readonly pendingHeredocs: Redirect[] = [];
  private readonly heredocMeta = new Map<Redirect, { delim: string; strip: boolean }>();

  constructor(private readonly src: string) {}

  // ---- lexer -------------------------------------------------------------------------

  private error(message: string): never {
    throw new ShellSyntaxError(message, this.line);
  }

  private peek(): Token {
    this.peeked ??= this.lex();
    return this.peeked;
  }

  private next(): Token {
    const t = this.peek();
    this.peeked = undefined;
    return t;
  }

  private lex(): Token {
    const s = this.src;
    for (;;) {
      const c = s[this.i];
      if (c === undefined) return { t: "eof", line: this.line };
      if (c === " " || c === "\t" || c === "\r") {
        this.i++;
        continue;
      }
      if (c === "\\" && s[this.i + 1] === "\n") {
        this.i += 2;
        this.line++;
        continue;
      }
      if (c === "#") {
        while (this.i < s.length && s[this.i] !== "\n") this.i++;
        continue;
      }
      break;
    }
    const line = this.line;
    const c = s[this.i]!;
    if (c === "\n") {
      this.i++;
      this.line++;
      this.readHeredocBodies();
      return { t: "op", op: "\n", line };
    }
    for (const op of ["&&", "||", ";;"]) {
      if (s.startsWith(op, this.i)) {
        this.i += 2;
        return { t: "op", op, line };
      }
    }
    if (";|&()".includes(c)) {
      this.i++;
      return { t: "op", op: c, line };
    }
    const redir = /^([0-9]*)(<<-|<<|>>|>&|<&|<>|>\||>|<)/.exec(s.slice(this.i, this.i + 8));
    if (redir && (redir[1] === "" || redir[1]!.length < 3)) {
      this.i += redir[0].length;
      return { t: "op", op: redir[2]!, line, ...(redir[1] ? { fd: Number(redir[1]) } : {}) };
    }
    return { t: "word", w: this.readWord(), line };
  }

  private readHeredocBodies(): void {
    const s = this.src;
    for (const r of this.pendingHeredocs.splice(0)) {
      const meta = this.heredocMeta.get(r)!;
      let body = "";
      for (;;) {
        if (this.i >= s.length) break;
        const end = s.indexOf("\n", this.i);
        const raw = s.slice(this.i, end < 0 ? s.length : end);
        this.i = end < 0 ? s.length : end + 1;
        this.line++;
        const text = meta.strip ? raw.replace(/^\t+/, "") : raw;
        if (text === meta.delim) break;
        body += `${text}\n`;
      }
      r.heredoc!.body = body;
    }
  }

  /** Reads one word at the current position (the caller has checked it starts one). */
  private readWord(): Word {
    const s = this.src;
    const start = this.i;
    const parts: Part[] = [];
    let lit = "";
    const flush = (): void => {
      if (lit !== "") parts.push({ k: "lit", text: lit, q: false });
      lit = "";
    };
    while (this.i < s.length) {
      const c = s[this.i]!;
      if (" \t\r\n;|&()<>".includes(c)) break;
      if (c === "\\") {
        if (s[this.i + 1] === "\n") {
          this.i += 2;
          this.line++;
          continue;
        }
        flush();
        if (this.i + 1 < s.length) parts.push({ k: "lit", text: s[this.i + 1]!, q: true });
        this.i += 2;
        continue;
      }
      if (c === "'") {
        flush();
        const end = s.indexOf("'", this.i + 1);
        if (end < 0) this.error("unterminated single quote");
        const body = s.slice(this.i + 1, end);
        this.countLines(body);
        parts.push({ k: "lit", text: body, q: true });
        this.i = end + 1;
        continue;
      }
      if (c === '"') {
        flush();
        this.i++;
        this.readDoubleQuoted(parts);
        continue;
      }
      if (c === "$") {
        flush();
        parts.push(this.readDollar(false));
        continue;
      }
      if (c === "`") {
        flush();
        parts.push(this.readBackquote(false));
        continue;
      }
      lit += c;
      this.i++;
    }
    flush();
    return { parts, raw: s.slice(start, this.i) };
  }

  private countLines(text: string): void {
    for (const ch of text) if (ch === "\n") this.line++;
  }

  /** After an opening `"`: reads to the closing one, pushing quoted parts. */
  private readDoubleQuoted(parts: Part[]): void {
    const s = this.src;
    let text = "";
    const flush = (): void => {
      parts.push({ k: "lit", text, q: true });
      text = "";
    };
    let pushed = false;
    while (this.i < s.length && s[this.i] !== '"') {
      const d = s[this.i]!;
      if (d === "\\" && this.i + 1 < s.length) {
        const n = s[this.i + 1]!;
        if (n === "\n") {
          this.line++;
          this.i += 2;
          continue;
        }
        text += "$`\"\\".includes(n) ? n : `\\${n}`;
        this.i += 2;
        continue;
      }
      if (d === "$") {
        if (text !== "") flush();
        parts.push(this.readDollar(true));
        pushed = true;
        continue;
      }
      if (d === "`") {
        if (text !== "") flush();
        parts.push(this.readBackquote(true));
        pushed = true;
        continue;
      }
      if (d === "\n") this.line++;
      text += d;
      this.i++;
    }
    if (this.i >= s.length) this.error("unterminated double quote");
    this.i++;
    // An empty "" is still a (quoted, empty) part: it makes a word.
    if (text !== "" || !pushed) flush();
  }

  /** At a `$`. */
  private readDollar(quoted: boolean): Part {
    const s = this.src;
    const n = s[this.i + 1];
    if (n === "(" && s[this.i + 2] === "(") {
      const end = this.matchParen(this.i + 1);
      const src = s.slice(this.i + 3, end - 1);
      this.countLines(s.slice(this.i, end + 1));
      this.i = end + 1;
      return { k: "arith", src, q: quoted };
    }
    if (n === "(") {
      const end = this.matchParen(this.i + 1);
      const src = s.slice(this.i + 2, end);
      const line = this.line;
      this.countLines(s.slice(this.i, end + 1));
      this.i = end + 1;
      return { k: "cmd", body: subParse(src, line), src, q: quoted };
    }
    if (n === "{") {
      const end = this.matchBrace(this.i + 1);
      const body = s.slice(this.i + 2, end);
      this.countLines(body);
      this.i = end + 1;
      return this.paramExpansion(body, quoted);
    }
    const m = /^([A-Za-z_][A-Za-z0-9_]*|[0-9@*#?$!-])/.exec(s.slice(this.i + 1, this.i + 80));
    if (!m) {
      this.i++;
      return { k: "lit", text: "$", q: quoted };
    }
    this.i += 1 + m[1]!.length;
    return { k: "param", name: m[1]!, q: quoted };
  }

  private paramExpansion(body: string, quoted: boolean): Part {
    if (body.startsWith("#") && body.length > 1 && /^#([A-Za-z_][A-Za-z0-9_]*|[0-9@*#?$!-])$/.test(body)) {
      return { k: "param", name: body.slice(1), op: "len", q: quoted };
    }
    const m = /^([A-Za-z_][A-Za-z0-9_]*|[0-9]+|[@*#?$!-])(.*)$/s.exec(body);
    if (!m) this.error(`bad substitution \${${body}}`);
    const [, name, rest] = m;
    if (rest === "") return { k: "param", name: name!, q: quoted };
    const op = /^(:-|:=|:\+|:\?|##|%%|-|=|\+|\?|#|%)/.exec(rest!)?.[1] as ParamOp | undefined;
    if (!op) this.error(`bad substitution \${${body}}`);
    const argSrc = rest!.slice(op.length);
    return { k: "param", name: name!, op, arg: subWord(argSrc, this.line), q: quoted };
  }

  /** Index of the `)` matching the `(` at `open`, skipping quotes and nested parentheses. */
  private matchParen(open: number): number {
    const s = this.src;
    let depth = 0;
    for (let j = open; j < s.length; j++) {
      const c = s[j]!;
      if (c === "\\") {
        j++;
        continue;
      }
      if (c === "'") {
        const e = s.indexOf("'", j + 1);
        if (e < 0) break;
        j = e;
        continue;
      }
      if (c === '"') {
        for (j++; j < s.length && s[j] !== '"'; j++) if (s[j] === "\\") j++;
        continue;
      }
      if (c === "#" && (j === 0 || /\s/.test(s[j - 1]!))) {
        while (j < s.length && s[j] !== "\n") j++;
        continue;
      }
      if (c === "(") depth++;
      else if (c === ")" && --depth === 0) return j;
    }
    this.error("unterminated $(");
  }

  private matchBrace(open: number): number {
    const s = this.src;
    let depth = 0;
    for (let j = open; j < s.length; j++) {
      const c = s[j]!;
      if (c === "\\") {
        j++;
        continue;
      }
      if (c === "'" && depth > 1) continue;
      if (c === "{") depth++;
      else if (c === "}" && --depth === 0) return j;
    }
    this.error("unterminated ${");
  }

  /** At a backquote: the command inside (backslash escapes of `$`, `` ` `` and `\` undone). */
  private readBackquote(quoted: boolean): Part {
    const s = this.src;
    let j = this.i + 1;
    let inner = "";
    for (; j < s.length && s[j] !== "`"; j++) {
      if (s[j] === "\\" && j + 1 < s.length && "$`\\".includes(s[j + 1]!)) {
        inner += s[j + 1];
        j++;
        continue;
      }
      inner += s[j];
    }
    if (j >= s.length) this.error("unterminated backquote");
    const line = this.line;
    this.countLines(s.slice(this.i, j));
    this.i = j + 1;
    return { k: "cmd", body: subParse(inner, line), src: inner, q: quoted };
  }

  /**
   * The whole source as one word, where blanks and operator characters are plain text (the
   * word of `${x:-a b}`).
   */
  looseWord(): Word {
    const parts: Part[] = [];
    while (this.i < this.src.length) {
      const c = this.src[this.i]!;
      if (" \t\r\n;|&()<>".includes(c)) {
        parts.push({ k: "lit", text: c, q: false });
        this.i++;
        continue;
      }
      parts.push(...this.readWord().parts);
    }
    return { parts, raw: this.src };
  }

  // ---- grammar -----------------------------------------------------------------------

  program(): List {
    const list = this.list(new Set());
    const t = this.peek();
    if (t.t !== "eof") this.error(`unexpected ${describe(t)}`);
    return list;
  }

  private skipNewlines(): void {
    while (isOp(this.peek(), "\n")) this.next();
  }

  /** Whether the next token ends a list: a closing reserved word, `)`, `;;` or the end. */
  private atListEnd(enders: ReadonlySet<string>): boolean {
    const t = this.peek();
    if (t.t === "eof") return true;
    if (t.t === "op") return t.op === ")" || t.op === ";;";
    const w = plainWord(t.w);
    return w !== undefined && (RESERVED_END.has(w) || enders.has(w));
  }

  private list(enders: ReadonlySet<string>): List {
    const items: List["items"] = [];
    this.skipNewlines();
    while (!this.atListEnd(enders)) {
      const cmd = this.andOr();
      let async = false;
      const t = this.peek();
      if (isOp(t, "&")) {
        async = true;
        this.next();
      } else if (isOp(t, ";")) this.next();
      items.push({ cmd, async });
      this.skipNewlines();
    }
    return { type: "list", items };
  }

  private andOr(): AndOr {
    const first = this.pipeline();
    const rest: AndOr["rest"] = [];
    for (;;) {
      const t = this.peek();
      if (t.t === "op" && (t.op === "&&" || t.op === "||")) {
        this.next();
        this.skipNewlines();
        rest.push({ op: t.op as "&&" | "||", pipeline: this.pipeline() });
        continue;
      }
      return { type: "andor", first, rest, line: first.line };
    }
  }

  private pipeline(): Pipeline {
    let negate = false;
    const start = this.peek();
    if (start.t === "word" && plainWord(start.w) === "!") {
      this.next();
      negate = true;
    }
    const commands = [this.command()];
    while (isOp(this.peek(), "|")) {
      this.next();
      this.skipNewlines();
      commands.push(this.command());
    }
    return { type: "pipeline", negate, commands, line: start.line };
  }

  private command(): Command {
    const t = this.peek();
    if (t.t === "op" && t.op === "(") {
      this.next();
      const body = this.list(new Set());
      this.expectOp(")");
      return { type: "subshell", body, redirects: this.redirects(), line: t.line };
    }
    if (t.t === "word") {
      const w = plainWord(t.w);
      switch (w) {
        case "if":
          return this.ifCommand();
        case "for":
          return this.forCommand();
        case "while":
        case "until":
          return this.loopCommand(w);
        case "case":
          return this.caseCommand();
        case "{": {
          this.next();
          const body = this.list(new Set());
          this.expectWord("}");
          return { type: "group", body, redirects: this.redirects(), line: t.line };
        }
        default:
          break;
      }
    }
    return this.simpleCommand();
  }

  private expectWord(word: string): void {
    const t = this.next();
    if (t.t !== "word" || plainWord(t.w) !== word) this.error(`expected "${word}", found ${describe(t)}`);
  }

  private expectOp(op: string): void {
    const t = this.next();
    if (!isOp(t, op)) this.error(`expected "${op}", found ${describe(t)}`);
  }

  private ifCommand(): IfCommand {
    const line = this.next().line;
    const branches: IfCommand["branches"] = [];
    let otherwise: List | undefined;
    const cond = this.list(new Set());
    this.expectWord("then");
    branches.push({ cond, body: this.list(new Set()) });
    for (;;) {
      const t = this.next();
      const w = t.t === "word" ? plainWord(t.w) : undefined;
      if (w === "elif") {
        const c = this.list(new Set());
        this.expectWord("then");
        branches.push({ cond: c, body: this.list(new Set()) });
        continue;
      }
      if (w === "else") {
        otherwise = this.list(new Set());
        this.expectWord("fi");
        break;
      }
      if (w === "fi") break;
      this.error(`expected "fi", found ${describe(t)}`);
    }
    return { type: "if", branches, ...(otherwise ? { otherwise } : {}), redirects: this.redirects(), line };
  }

  private forCommand(): ForCommand {
    const line = this.next().line;
    const nameTok = this.next();
    const name = nameTok.t === "word" ? plainWord(nameTok.w) : undefined;
    if (name === undefined || !NAME.test(name)) this.error("bad for loop variable");
    let words: Word[] | undefined;
    this.skipNewlines();
    const t = this.peek();
    if (t.t === "word" && plainWord(t.w) === "in") {
      this.next();
      words = [];
      for (;;) {
        const n = this.peek();
        if (n.t !== "word") break;
        words.push(n.w);
        this.next();
      }
      const sep = this.next();
      if (!isOp(sep, ";") && !isOp(sep, "\n")) this.error(`expected ";" or a newline after the for list, found ${describe(sep)}`);
    } else if (isOp(t, ";")) this.next();
    this.skipNewlines();
    this.expectWord("do");
    const body = this.list(new Set());
    this.expectWord("done");
    return { type: "for", name, ...(words ? { words } : {}), body, redirects: this.redirects(), line };
  }

  private loopCommand(kind: "while" | "until"): LoopCommand {
    const line = this.next().line;
    const cond = this.list(new Set());
    this.expectWord("do");
    const body = this.list(new Set());
    this.expectWord("done");
    return { type: kind, cond, body, redirects: this.redirects(), line };
  }

  private caseCommand(): CaseCommand {
    const line = this.next().line;
    const wt = this.next();
    if (wt.t !== "word") this.error("expected a word after case");
    this.skipNewlines();
    this.expectWord("in");
    this.skipNewlines();
    const items: CaseCommand["items"] = [];
    for (;;) {
      const t = this.peek();
      if (t.t === "word" && plainWord(t.w) === "esac") {
        this.next();
        break;
      }
      if (isOp(t, "(")) this.next();
      const patterns: Word[] = [];
      for (;;) {
        const p = this.next();
        if (p.t !== "word") this.error(`expected a case pattern, found ${describe(p)}`);
        patterns.push(p.w);
        const sep = this.next();
        if (isOp(sep, "|")) continue;
        if (isOp(sep, ")")) break;
        this.error(`expected ")" after a case pattern, found ${describe(sep)}`);
      }
      const body = this.list(new Set(["esac"]));
      items.push({ patterns, body });
      const end = this.peek();
      if (isOp(end, ";;")) {
        this.next();
        this.skipNewlines();
        continue;
      }
      if (end.t === "word" && plainWord(end.w) === "esac") continue;
      this.error(`expected ";;" or "esac", found ${describe(end)}`);
    }
    return { type: "case", word: wt.w, items, redirects: this.redirects(), line };
  }

  private redirects(): Redirect[] {
    const out: Redirect[] = [];
    for (;;) {
      const r = this.redirect();
      if (!r) return out;
      out.push(r);
    }
  }

  private redirect(): Redirect | undefined {
    const t = this.peek();
    if (t.t !== "op" || !/^(<<-|<<|>>|>&|<&|<>|>\||>|<)$/.test(t.op)) return undefined;
    this.next();
    const target = this.next();
    if (target.t !== "word") this.error(`expected a file name after ${t.op}`);
    const r: Redirect = { op: t.op as Redirect["op"], target: target.w, ...(t.fd !== undefined ? { fd: t.fd } : {}) };
    if (t.op === "<<" || t.op === "<<-") {
      const quoted = target.w.parts.some((p) => p.k === "lit" && p.q);
      const delim = target.w.parts.map((p) => (p.k === "lit" ? p.text : p.k === "param" ? `$${p.name}` : "")).join("");
      r.heredoc = { body: "", expand: !quoted };
      this.heredocMeta.set(r, { delim, strip: t.op === "<<-" });
      this.pendingHeredocs.push(r);
    }
    return r;
  }

  private simpleCommand(): Command {
    const line = this.peek().line;
    const assigns: SimpleCommand["assigns"] = [];
    const words: Word[] = [];
    const redirects: Redirect[] = [];
    for (;;) {
      const r = this.redirect();
      if (r) {
        redirects.push(r);
        continue;
      }
      const t = this.peek();
      if (t.t !== "word") break;
      if (words.length === 0) {
        const a = assignment(t.w);
        if (a) {
          this.next();
          assigns.push(a);
          continue;
        }
      }
      this.next();
      words.push(t.w);
      // `name() body`: a function definition.
      if (words.length === 1 && assigns.length === 0 && redirects.length === 0 && isOp(this.peek(), "(")) {
        const name = plainWord(t.w);
        if (name === undefined || !/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(name)) this.error("bad function name");
        this.next();
        this.expectOp(")");
        this.skipNewlines();
        return { type: "function", name, body: this.command(), line };
      }
    }
    if (words.length === 0 && assigns.length === 0 && redirects.length === 0) this.error(`unexpected ${describe(this.peek())}`);
    return { type: "simple", assigns, words, redirects, line };
  }
}

function isOp(t: Token, op: string): boolean {
  return t.t === "op" && t.op === op;
}

function describe(t: Token): string {
  if (t.t === "eof") return "the end of the script";
  if (t.t === "op") return t.op === "\n" ? "a newline" : `"${t.op}"`;
  return `"${t.w.raw}"`;
}

/** The literal text of an unquoted word without expansions (reserved words are recognised on it). */
export function plainWord(w: Word): string | undefined {
  if (w.parts.length !== 1) return undefined;
  const p = w.parts[0]!;
  return p.k === "lit" && !p.q ? p.text : undefined;
}

/** `NAME=value` at the start of a command. */
function assignment(w: Word): { name: string; value: Word } | undefined {
  const first = w.parts[0];
  if (!first || first.k !== "lit" || first.q) return undefined;
  const m = /^([A-Za-z_][A-Za-z0-9_]*)=/.exec(first.text);
  if (!m) return undefined;
  const restText = first.text.slice(m[0].length);
  const parts: Part[] = [...(restText !== "" ? [{ ...first, text: restText }] : []), ...w.parts.slice(1)];
  return { name: m[1]!, value: { parts, raw: w.raw.slice(m[0].length) } };
}

/** Parses the inside of a command substitution. */
function subParse(src: string, line: number): List {
  try {
    return new Parser(src).program();
  } catch (err) {
    if (err instanceof ShellSyntaxError) throw new ShellSyntaxError(`in a command substitution: ${err.message}`, line);
    throw err;
  }
}

/** The word of a `${x:-word}` operator (quotes and expansions allowed, no field splitting). */
function subWord(src: string, line: number): Word {
  try {
    return new Parser(src).looseWord();
  } catch (err) {
    if (err instanceof ShellSyntaxError) throw new ShellSyntaxError(`in a parameter expansion: ${err.message}`, line);
    throw err;
  }
}
