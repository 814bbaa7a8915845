/**
 * Just enough of the POSIX shell grammar to find the simple commands of a maintainer script
 * (`update-alternatives --install ...`, `add-shell ...`) and expand their words the way `sh`
 * would — without ever running anything.
 *
 * Handled: comments, backslash-newline continuations, single and double quotes, backslash
 * escapes, `$name`/`${name}`/`$1` expansion with field splitting of unquoted expansions, here-docs
 * (skipped), redirections (dropped), `;`/`&&`/`||`/`|`/`&`/newline separators, leading keywords
 * (`if`, `then`, `do`, `!`, ...), and `NAME=value` assignments, which later words see (in script
 * order: a sequential approximation that fits the straight-line scripts debhelper generates).
 *
 * Anything whose value cannot be known without running the script — command substitution,
 * arithmetic, `${x:-y}`-style operators, unknown variables, `$@`, unquoted globs — makes the
 * command *unresolved*: callers skip it and say so, instead of guessing.
 */

/** One part of a word as written. */
type WordPart =
  | { kind: "text"; text: string; quoted: boolean }
  | { kind: "var"; name: string; quoted: boolean }
  | { kind: "unknown"; why: string };

interface RawWord {
  parts: WordPart[];
  /** True if any part was quoted (an empty quoted word still is a word). */
  quoted: boolean;
}

type Token = { kind: "word"; word: RawWord; line: number } | { kind: "op"; op: string; line: number };

/** A simple command whose words were all expanded. */
export interface ShellCommand {
  words: string[];
  /** 1-based line of the command's first word. */
  line: number;
}

/** A command that names a wanted program but whose words cannot be known statically. */
export interface UnresolvedCommand {
  line: number;
  /** The command as written (for messages). */
  text: string;
  reason: string;
}

/** Variables the script sees: `$1`, `$DPKG_MAINTSCRIPT_PACKAGE`, ... (undefined = unknown). */
export type ShellEnv = Readonly<Record<string, string>>;

const KEYWORDS = new Set(["if", "then", "else", "elif", "do", "while", "until", "!", "{", "time"]);
const CLOSERS = new Set(["fi", "done", "esac", "}"]);

/** Splits a script into tokens. */
function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  let line = 1;
  const pendingHeredocs: Array<{ delim: string; stripTabs: boolean }> = [];

  const readHeredocBodies = (): void => {
    // Called right after a newline: skip the bodies of here-docs opened on the previous line.
    for (const h of pendingHeredocs.splice(0)) {
      for (;;) {
        if (i >= src.length) return;
        const end = src.indexOf("\n", i);
        const raw = src.slice(i, end < 0 ? src.length : end);
        i = end < 0 ? src.length : end + 1;
        line++;
        const text = h.stripTabs ? raw.replace(/^\t+/, "") : raw;
        if (text === h.delim) break;
      }
    }
  };

  while (i < src.length) {
    const c = src[i]!;
    if (c === "\\" && src[i + 1] === "\n") {
      i += 2;
      line++;
      continue;
    }
    if (c === " " || c === "\t" || c === "\r") {
      i++;
      continue;
    }
    if (c === "\n") {
      out.push({ kind: "op", op: "\n", line });
      i++;
      line++;
      readHeredocBodies();
      continue;
    }
    if (c === "#") {
      while (i < src.length && src[i] !== "\n") i++;
      continue;
    }
    const two = src.slice(i, i + 2);
    if (two === "&&" || two === "||" || two === ";;") {
      out.push({ kind: "op", op: two, line });
      i += 2;
      continue;
    }
    if (c === ";" || c === "|" || c === "&" || c === "(" || c === ")") {
      out.push({ kind: "op", op: c, line });
      i++;
      continue;
    }
    // Redirections, optionally with a file descriptor number in front (`2>&1`, `>/dev/null`).
    const redir = /^[0-9]*(<<-|<<|>>|>&|<&|<>|>\||>|<)/.exec(src.slice(i, i + 8));
    if (redir) {
      const op = redir[1]!;
      i += redir[0].length;
      if (op === "<<" || op === "<<-") {
        while (src[i] === " " || src[i] === "\t") i++;
        const start = line;
        const w = readWord();
        const delim = w.parts.map((p) => (p.kind === "text" ? p.text : "")).join("");
        pendingHeredocs.push({ delim, stripTabs: op === "<<-" });
        out.push({ kind: "op", op: "<<", line: start });
        continue;
      }
      out.push({ kind: "op", op: "redir", line });
      continue;
    }
    const start = line;
    out.push({ kind: "word", word: readWord(), line: start });
  }
  return out;

  function readWord(): RawWord {
    const parts: WordPart[] = [];
    let quoted = false;
    let text = "";
    const flush = (q: boolean): void => {
      if (text !== "") parts.push({ kind: "text", text, quoted: q });
      text = "";
    };
    while (i < src.length) {
      const c = src[i]!;
      if (c === "\\") {
        if (src[i + 1] === "\n") {
          i += 2;
          line++;
          continue;
        }
        flush(false);
        if (i + 1 < src.length) parts.push({ kind: "text", text: src[i + 1]!, quoted: true });
        quoted = true;
        i += 2;
        continue;
      }
      if (" \t\r\n;|&()<>".includes(c)) break;
      if (c === "'") {
        flush(false);
        const end = src.indexOf("'", i + 1);
        const body = end < 0 ? src.slice(i + 1) : src.slice(i + 1, end);
        for (const ch of body) if (ch === "\n") line++;
        parts.push({ kind: "text", text: body, quoted: true });
        quoted = true;
        i = end < 0 ? src.length : end + 1;
        continue;
      }
      if (c === '"') {
        flush(false);
        quoted = true;
        i++;
        let inner = "";
        const flushInner = (): void => {
          if (inner !== "") parts.push({ kind: "text", text: inner, quoted: true });
          inner = "";
        };
        while (i < src.length && src[i] !== '"') {
          const d = src[i]!;
          if (d === "\\" && i + 1 < src.length) {
            const n = src[i + 1]!;
            if (n === "\n") {
              line++;
              i += 2;
              continue;
            }
            inner += "$`\"\\".includes(n) ? n : `\\${n}`;
            i += 2;
            continue;
          }
          if (d === "$") {
            flushInner();
            parts.push(readDollar(true));
            continue;
          }
          if (d === "`") {
            flushInner();
            parts.push(skipBackquote());
            continue;
          }
          if (d === "\n") line++;
          inner += d;
          i++;
        }
        flushInner();
        i++; // closing quote
        if (parts.length === 0 || parts[parts.length - 1]!.kind !== "text") parts.push({ kind: "text", text: "", quoted: true });
        continue;
      }
      if (c === "$") {
        flush(false);
        parts.push(readDollar(false));
        continue;
      }
      if (c === "`") {
        flush(false);
        parts.push(skipBackquote());
        continue;
      }
      text += c;
      i++;
    }
    flush(false);
    return { parts, quoted };
  }

  function readDollar(quoted: boolean): WordPart {
    // At a `$`.
    const n = src[i + 1];
    if (n === "(") {
      // $(...) or $((...)): skip to the matching parenthesis.
      let depth = 0;
      for (i += 1; i < src.length; i++) {
        if (src[i] === "\n") line++;
        if (src[i] === "(") depth++;
        else if (src[i] === ")" && --depth === 0) break;
      }
      i++;
      return { kind: "unknown", why: "command substitution" };
    }
    if (n === "{") {
      const end = src.indexOf("}", i + 2);
      const body = end < 0 ? src.slice(i + 2) : src.slice(i + 2, end);
      i = end < 0 ? src.length : end + 1;
      if (/^([A-Za-z_][A-Za-z0-9_]*|[0-9])$/.test(body)) return { kind: "var", name: body, quoted };
      return { kind: "unknown", why: `parameter expansion \${${body}}` };
    }
    const m = /^([A-Za-z_][A-Za-z0-9_]*|[0-9@*#?$!-])/.exec(src.slice(i + 1, i + 64));
    if (!m) {
      i++;
      return { kind: "text", text: "$", quoted };
    }
    i += 1 + m[1]!.length;
    if (/^[@*#?$!-]$/.test(m[1]!)) return { kind: "unknown", why: `special parameter $${m[1]}` };
    return { kind: "var", name: m[1]!, quoted };
  }

  function skipBackquote(): WordPart {
    const end = src.indexOf("`", i + 1);
    for (const ch of src.slice(i, end < 0 ? src.length : end)) if (ch === "\n") line++;
    i = end < 0 ? src.length : end + 1;
    return { kind: "unknown", why: "command substitution" };
  }
}

/** Expands one word; `undefined` with a reason when it cannot be known. */
function expandWord(w: RawWord, vars: Map<string, string | undefined>): { fields: string[] } | { why: string } {
  // Build the word's characters, remembering which came from unquoted expansions (split there).
  const fields: string[] = [];
  let cur = "";
  let have = w.quoted;
  for (const p of w.parts) {
    if (p.kind === "unknown") return { why: p.why };
    if (p.kind === "text") {
      if (!p.quoted && /[*?[]/.test(p.text)) return { why: `unquoted glob in "${p.text}"` };
      cur += p.text;
      have = have || p.text !== "";
      continue;
    }
    if (!vars.has(p.name) || vars.get(p.name) === undefined) return { why: `unknown variable $${p.name}` };
    const value = vars.get(p.name)!;
    if (p.quoted) {
      cur += value;
      continue;
    }
    if (/[*?[]/.test(value)) return { why: `unquoted glob in $${p.name}` };
    // Field splitting on default IFS.
    const pieces = value.split(/[ \t\n]+/);
    for (let k = 0; k < pieces.length; k++) {
      if (k > 0) {
        if (have || cur !== "") fields.push(cur);
        cur = "";
        have = false;
      }
      cur += pieces[k]!;
      if (pieces[k] !== "") have = true;
    }
  }
  if (have || cur !== "") fields.push(cur);
  return { fields };
}

function rawText(w: RawWord): string {
  return w.parts.map((p) => (p.kind === "text" ? p.text : p.kind === "var" ? `$${p.name}` : "$(...)")).join("");
}

/**
 * The simple commands of `script` whose program is one of `programs` (matched on the word or on
 * its last path component: `/usr/bin/update-alternatives` counts), with their arguments expanded.
 * Commands inside functions are included where they are written (a maintainer script defines
 * its helpers to call them).
 */
export function findCommands(script: string, programs: readonly string[], env: ShellEnv): { commands: ShellCommand[]; unresolved: UnresolvedCommand[] } {
  const wanted = new Set(programs);
  const vars = new Map<string, string | undefined>(Object.entries(env));
  const commands: ShellCommand[] = [];
  const unresolved: UnresolvedCommand[] = [];
  const tokens = tokenize(script);

  let words: Array<{ word: RawWord; line: number }> = [];
  let skipNext = false;
  const endCommand = (): void => {
    const cmd = words;
    words = [];
    skipNext = false;
    // Drop leading keywords and closers (`then update-alternatives ...`, `fi`).
    let k = 0;
    while (k < cmd.length) {
      const t = plain(cmd[k]!.word);
      if (t !== undefined && (KEYWORDS.has(t) || CLOSERS.has(t))) k++;
      else break;
    }
    const rest = cmd.slice(k);
    if (rest.length === 0) return;
    // Leading NAME=value words are assignments (for the command, or for the shell if alone).
    let a = 0;
    const assigns: Array<[string, string | undefined]> = [];
    while (a < rest.length) {
      const w = rest[a]!.word;
      const first = w.parts[0];
      const m = first && first.kind === "text" && !first.quoted ? /^([A-Za-z_][A-Za-z0-9_]*)=/.exec(first.text) : null;
      if (!m) break;
      const valueWord: RawWord = { quoted: true, parts: [{ ...first, text: (first as { text: string }).text.slice(m[0].length) } as WordPart, ...w.parts.slice(1)] };
      const v = expandWord(valueWord, vars);
      assigns.push([m[1]!, "fields" in v ? v.fields.join(" ") : undefined]);
      a++;
    }
    const argv = rest.slice(a);
    if (argv.length === 0) {
      for (const [n, v] of assigns) vars.set(n, v);
      return;
    }
    const prog = plain(argv[0]!.word);
    if (prog === undefined) return;
    const base = prog.slice(prog.lastIndexOf("/") + 1);
    if (!wanted.has(prog) && !wanted.has(base)) return;
    const out: string[] = [base];
    for (const { word } of argv.slice(1)) {
      const e = expandWord(word, vars);
      if ("why" in e) {
        unresolved.push({ line: argv[0]!.line, text: argv.map((x) => rawText(x.word)).join(" "), reason: e.why });
        return;
      }
      out.push(...e.fields);
    }
    commands.push({ words: out, line: argv[0]!.line });
  };

  for (const t of tokens) {
    if (t.kind === "op") {
      if (t.op === "redir" || t.op === "<<") {
        skipNext = true;
        continue;
      }
      endCommand();
      continue;
    }
    if (skipNext) {
      skipNext = false;
      continue;
    }
    // `foo() {` defines a function: its name is no command.
    words.push({ word: t.word, line: t.line });
  }
  endCommand();
  return { commands, unresolved };
}

/** The literal text of a word if it has no expansions, else undefined. */
function plain(w: RawWord): string | undefined {
  let s = "";
  for (const p of w.parts) {
    if (p.kind !== "text") return undefined;
    s += p.text;
  }
  return s;
}
