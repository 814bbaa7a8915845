/**
 * Values of the script interpreter. What a script computes from the image (a file's mode, an
 * account's uid, `dpkg --compare-versions` against the empty old version) is known at build
 * time; what it would learn from the running machine or from programs Kiln does not model is
 * {@link Unknown}, and everything computed from an unknown value is unknown too. The
 * interpreter never guesses one: it reports what depends on it.
 */

/** Where a command's standard output goes. */
export class Sink {
  private text = "";
  private unknown: Unknown | undefined;
  constructor(readonly kind: "capture" | "discard" | "file") {}

  write(v: Value): void {
    if (this.kind === "discard") return;
    if (isUnknown(v)) this.unknown ??= v;
    else this.text += v;
  }

  value(): Value {
    return this.unknown ?? this.text;
  }
}

/**
 * A command's standard input: a value read from the front, like a file descriptor's offset —
 * `read` takes a line, a program that reads its input takes the rest, and commands that never
 * read it (most) leave it for the next one, as in `while read x; do ...; done < file`.
 */
export class Input {
  private pos = 0;
  constructor(private readonly value: Value) {}

  /** One line (without its newline), `undefined` at the end, or Unknown. */
  line(): string | undefined | Unknown {
    if (isUnknown(this.value)) return this.value;
    if (this.pos >= this.value.length) return undefined;
    const nl = this.value.indexOf("\n", this.pos);
    const end = nl < 0 ? this.value.length : nl;
    const line = this.value.slice(this.pos, end);
    this.pos = nl < 0 ? this.value.length : nl + 1;
    return line;
  }

  /** Everything not read yet. */
  rest(): Value {
    if (isUnknown(this.value)) return this.value;
    const r = this.value.slice(this.pos);
    this.pos = this.value.length;
    return r;
  }
}

/** A value Kiln cannot know at build time, with why (for the report). */
export class Unknown {
  constructor(readonly why: string) {}
}

export type Value = string | Unknown;

/** An exit status, or Unknown when it depends on something Kiln does not model. */
export type Status = number | Unknown;

export function isUnknown(v: unknown): v is Unknown {
  return v instanceof Unknown;
}

/** The first unknown of a list of values, if any. */
export function firstUnknown(vs: readonly Value[]): Unknown | undefined {
  for (const v of vs) if (v instanceof Unknown) return v;
  return undefined;
}

/** Concatenation that stays unknown when a part is. */
export function concat(a: Value, b: Value): Value {
  if (a instanceof Unknown) return a;
  if (b instanceof Unknown) return b;
  return a + b;
}

/** Converts a shell glob pattern to a RegExp. In `pattern`, a backslash makes the next character literal. */
export function globRegExp(pattern: string, options: { anchored?: "both" | "start" | "end" | "none"; greedy?: boolean; pathname?: boolean } = {}): RegExp {
  let re = "";
  const star = options.pathname ? "[^/]*" : options.greedy === false ? "[\\s\\S]*?" : "[\\s\\S]*";
  const any = options.pathname ? "[^/]" : "[\\s\\S]";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === "\\" && i + 1 < pattern.length) {
      re += escapeRe(pattern[++i]!);
      continue;
    }
    if (c === "*") re += star;
    else if (c === "?") re += any;
    else if (c === "[") {
      const end = classEnd(pattern, i);
      if (end < 0) {
        re += "\\[";
        continue;
      }
      let body = pattern.slice(i + 1, end);
      let negate = false;
      if (body.startsWith("!") || body.startsWith("^")) {
        negate = true;
        body = body.slice(1);
      }
      const cls = body
        .replace(/\[:(alpha|digit|alnum|upper|lower|space|blank|punct|xdigit|print|graph|cntrl):\]/g, (_, n: string) => POSIX_CLASSES[n]!)
        .replace(/\\(?![\w])/g, "\\\\")
        .replace(/]/g, "\\]");
      re += `[${negate ? "^" : ""}${cls}]`;
      i = end;
    } else re += escapeRe(c);
  }
  const a = options.anchored ?? "both";
  return new RegExp(`${a === "both" || a === "start" ? "^" : ""}${re}${a === "both" || a === "end" ? "$" : ""}`, "s");
}

const POSIX_CLASSES: Record<string, string> = {
  alpha: "A-Za-z",
  digit: "0-9",
  alnum: "A-Za-z0-9",
  upper: "A-Z",
  lower: "a-z",
  space: " \\t\\n\\r\\f\\v",
  blank: " \\t",
  punct: "!-\\/:-@\\[-`{-~",
  xdigit: "0-9A-Fa-f",
  print: " -~",
  graph: "!-~",
  cntrl: "\\x00-\\x1f\\x7f",
};

function classEnd(p: string, open: number): number {
  let j = open + 1;
  if (p[j] === "!" || p[j] === "^") j++;
  if (p[j] === "]") j++;
  for (; j < p.length; j++) {
    if (p[j] === "[" && p[j + 1] === ":") {
      const e = p.indexOf(":]", j + 2);
      if (e > 0) {
        j = e + 1;
        continue;
      }
    }
    if (p[j] === "]") return j;
  }
  return -1;
}

export function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

/** Whether a pattern (backslash-escaped, see {@link globRegExp}) has glob characters. */
export function hasGlob(pattern: string): boolean {
  // Most words are long and plain (whole files, in `$(cat ...)`): one native scan says so.
  if (!/[*?[]/.test(pattern)) return false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === "\\") {
      i++;
      continue;
    }
    if (c === "*" || c === "?" || c === "[") return true;
  }
  return false;
}

/** The pattern without its escapes (what the word is when taken literally). */
export function unescapePattern(pattern: string): string {
  return pattern.replace(/\\([\s\S])/g, "$1");
}
