/**
 * The text and query programs maintainer scripts pipe their values through (`cut`, `tr`, `sed`,
 * `grep`, `sort`, `basename`, `stat`, `readlink`, `md5sum`, ...), computed on known values. An
 * option or a `sed` command Kiln does not implement gives an unknown result, never a guess.
 */
import { createHash } from "node:crypto";
import type { Invocation, Tool } from "./interpret.js";
import { getopt, readText, writeTextFile } from "./files.js";
import { readContent } from "./overlay.js";
import { compareBytes } from "../tree.js";
import { isUnknown, Unknown, type Status, type Value } from "./values.js";

/** The text a program reads: its file operands, else its input. */
async function inputOf(inv: Invocation, files: readonly string[]): Promise<Value> {
  if (files.length === 0 || (files.length === 1 && files[0] === "-")) return inv.stdin ?? "";
  let text = "";
  for (const f of files) {
    const e = inv.sh.fs.stat(f, inv.sh.cwd);
    if (e?.type !== "file") return new Unknown(`${f} does not exist`);
    text += (await inv.sh.fs.readFile(f, inv.sh.cwd)).toString("utf8");
  }
  return text;
}

function lines(text: string): string[] {
  const ls = text.split("\n");
  if (ls[ls.length - 1] === "") ls.pop();
  return ls;
}

const unknownResult = (inv: Invocation, why: string): Status => {
  inv.out.write(new Unknown(why));
  return new Unknown(why);
};

const basename: Tool = (inv) => {
  const [p, suffix] = inv.argv.slice(1).filter((a) => a !== "--");
  if (p === undefined) return 1;
  let b = p.replace(/\/+$/, "");
  b = b === "" ? "/" : b.slice(b.lastIndexOf("/") + 1);
  if (suffix && b !== suffix && b.endsWith(suffix)) b = b.slice(0, -suffix.length);
  inv.out.write(`${b}\n`);
  return 0;
};

const dirname: Tool = (inv) => {
  const p = inv.argv[1];
  if (p === undefined) return 1;
  const t = p.replace(/\/+$/, "");
  const i = t.lastIndexOf("/");
  inv.out.write(`${i < 0 ? "." : i === 0 ? "/" : t.slice(0, i).replace(/\/+$/, "") || "/"}\n`);
  return 0;
};

const cut: Tool = async (inv) => {
  const { values, operands } = getopt(inv.argv.slice(1), new Set(["-d", "-f", "-c", "--delimiter", "--fields"]));
  const input = await inputOf(inv, operands);
  if (isUnknown(input)) return unknownResult(inv, input.why);
  const delim = values.get("-d") ?? values.get("--delimiter") ?? "\t";
  const fieldSpec = values.get("-f") ?? values.get("--fields");
  const charSpec = values.get("-c");
  const spec = fieldSpec ?? charSpec;
  if (spec === undefined) return 1;
  const ranges = spec.split(",").map((r) => {
    const m = /^([0-9]*)(-?)([0-9]*)$/.exec(r);
    if (!m) return undefined;
    const a = m[1] ? Number(m[1]) : 1;
    const b = m[2] ? (m[3] ? Number(m[3]) : Infinity) : a;
    return [a, b] as const;
  });
  if (ranges.some((r) => r === undefined)) return 1;
  const pick = (n: number): boolean => ranges.some((r) => n >= r![0] && n <= r![1]);
  let out = "";
  for (const line of lines(input)) {
    if (charSpec !== undefined) {
      out += `${[...line].filter((_, k) => pick(k + 1)).join("")}\n`;
      continue;
    }
    if (!line.includes(delim)) {
      out += `${line}\n`;
      continue;
    }
    out += `${line
      .split(delim)
      .filter((_, k) => pick(k + 1))
      .join(delim)}\n`;
  }
  inv.out.write(out);
  return 0;
};

/** `tr [-d] [-s] SET1 [SET2]` with ranges, `\n`-style escapes and `[:class:]`. */
const tr: Tool = async (inv) => {
  const { flags, operands } = getopt(inv.argv.slice(1));
  const input = inv.stdin ?? "";
  if (isUnknown(input)) return unknownResult(inv, input.why);
  const set1 = trSet(operands[0] ?? "");
  const set2 = trSet(operands[1] ?? "");
  if (set1 === undefined || set2 === undefined || flags.has("-c") || flags.has("-C")) return unknownResult(inv, `tr ${operands.join(" ")}`);
  let out = "";
  if (flags.has("-d")) out = [...input].filter((c) => !set1.includes(c)).join("");
  else {
    for (const c of input) {
      const k = set1.indexOf(c);
      out += k < 0 ? c : (set2[Math.min(k, set2.length - 1)] ?? c);
    }
  }
  if (flags.has("-s")) {
    const squeeze = flags.has("-d") ? set2 : set2.length > 0 ? set2 : set1;
    out = out.replace(/([\s\S])\1+/g, (m, c: string) => (squeeze.includes(c) ? c : m));
  }
  inv.out.write(out);
  return 0;
};

function trSet(spec: string): string[] | undefined {
  const classes: Record<string, string> = { lower: "abcdefghijklmnopqrstuvwxyz", upper: "ABCDEFGHIJKLMNOPQRSTUVWXYZ", digit: "0123456789", space: " \t\n\r\f\v", blank: " \t" };
  let s = spec.replace(/\[:([a-z]+):\]/g, (m, c: string) => classes[c] ?? m);
  s = s.replace(/\\(n|t|r|\\|0[0-7]{0,3})/g, (_, e: string) => (e === "n" ? "\n" : e === "t" ? "\t" : e === "r" ? "\r" : e === "\\" ? "\\" : String.fromCharCode(parseInt(e, 8))));
  const out: string[] = [];
  const chars = [...s];
  for (let k = 0; k < chars.length; k++) {
    if (chars[k + 1] === "-" && chars[k + 2] !== undefined) {
      const a = chars[k]!.codePointAt(0)!;
      const b = chars[k + 2]!.codePointAt(0)!;
      if (b < a) return undefined;
      for (let c = a; c <= b; c++) out.push(String.fromCodePoint(c));
      k += 2;
      continue;
    }
    out.push(chars[k]!);
  }
  return out;
}

/**
 * A POSIX basic (or extended) regular expression as a JavaScript one: BRE's `\(`, `\{`, `\|`,
 * `\+`, `\?` (GNU) become the operators, bare `( ) { } | + ?` literals; bracket expressions
 * and character classes translated.
 */
export function posixRegExp(re: string, extended: boolean, flags = ""): RegExp | undefined {
  let out = "";
  for (let i = 0; i < re.length; i++) {
    const c = re[i]!;
    if (c === "\\") {
      const n = re[++i];
      if (n === undefined) return undefined;
      if (!extended && "(){}|+?".includes(n)) out += n;
      else if (n === "<" || n === ">") out += "\\b";
      else if (/[0-9nt.*[\]^$\\/wWsS]/.test(n)) out += `\\${n}`;
      else out += escapeChar(n);
      continue;
    }
    if (c === "[") {
      let j = i + 1;
      let body = "";
      if (re[j] === "^") {
        body += "^";
        j++;
      }
      if (re[j] === "]") {
        body += "\\]";
        j++;
      }
      for (; j < re.length && re[j] !== "]"; j++) {
        if (re[j] === "[" && re[j + 1] === ":") {
          const e = re.indexOf(":]", j);
          if (e < 0) return undefined;
          const cls = re.slice(j + 2, e);
          const map: Record<string, string> = { alpha: "A-Za-z", digit: "0-9", alnum: "A-Za-z0-9", upper: "A-Z", lower: "a-z", space: "\\s", blank: " \\t", punct: "!-\\/:-@\\[-`{-~", xdigit: "0-9A-Fa-f" };
          if (!map[cls]) return undefined;
          body += map[cls];
          j = e + 1;
          continue;
        }
        body += re[j] === "\\" ? "\\\\" : re[j];
      }
      if (j >= re.length) return undefined;
      out += `[${body}]`;
      i = j;
      continue;
    }
    if (!extended && "(){}|+?".includes(c)) {
      out += `\\${c}`;
      continue;
    }
    if (c === "*" && (out === "" || out === "^" || out.endsWith("(") || out.endsWith("|"))) {
      out += "\\*";
      continue;
    }
    out += c === "/" ? "\\/" : c;
  }
  try {
    return new RegExp(out, flags);
  } catch {
    return undefined;
  }
}

function escapeChar(c: string): string {
  return /[.*+?^${}()|[\]\\/]/.test(c) ? `\\${c}` : c;
}

const grep: Tool = async (inv) => {
  const { flags, values, operands } = getopt(inv.argv.slice(1), new Set(["-e", "-f", "-m", "--regexp"]));
  const extended = inv.name === "egrep" || flags.has("-E") || flags.has("--extended-regexp");
  const fixed = inv.name === "fgrep" || flags.has("-F") || flags.has("--fixed-strings");
  if (flags.has("-P") || values.has("-f")) return unknownResult(inv, `${inv.name} ${inv.argv.slice(1).join(" ")}`);
  const patternArg = values.get("-e") ?? values.get("--regexp");
  const pattern = patternArg ?? operands[0];
  if (pattern === undefined) return 2;
  const files = patternArg !== undefined ? operands : operands.slice(1);
  const input = await inputOf(inv, files);
  if (isUnknown(input)) {
    if (flags.has("-s") && files.length > 0) return 2;
    return unknownResult(inv, input.why);
  }
  const ci = flags.has("-i") || flags.has("--ignore-case");
  const whole = flags.has("-x") || flags.has("--line-regexp");
  const invert = flags.has("-v") || flags.has("--invert-match");
  const pats = pattern.split("\n");
  const res = pats.map((p) => {
    if (fixed) return new RegExp(`${whole ? "^" : ""}${p.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}${whole ? "$" : ""}`, ci ? "i" : "");
    const r = posixRegExp(p, extended, ci ? "i" : "");
    return r && whole ? new RegExp(`^(?:${r.source})$`, r.flags) : r;
  });
  if (res.some((r) => r === undefined)) return unknownResult(inv, `the pattern ${pattern}`);
  const matched = lines(input).filter((l) => res.some((r) => r!.test(l)) !== invert);
  if (flags.has("-c")) inv.out.write(`${matched.length}\n`);
  else if (!flags.has("-q") && !flags.has("--quiet") && !flags.has("--silent")) inv.out.write(matched.map((l) => `${l}\n`).join(""));
  return matched.length > 0 ? 0 : 1;
};

/** `sed [-n] [-e script]... [-i] [file]`: `s///`, `d`, `p`, `q`, addresses `N`, `$`, `/re/`, `N,M`. */
const sed: Tool = async (inv) => {
  const { flags, values, operands } = getopt(
    inv.argv.slice(1).flatMap((a) => (/^-[a-zA-Z]*e$/.test(a) && a.length > 2 ? [a.slice(0, -1), "-e"] : [a])),
    new Set(["-e", "--expression", "-f"]),
  );
  if (values.has("-f")) return unknownResult(inv, "a sed script file");
  // getopt keeps only the last -e: collect them all.
  const scripts: string[] = [];
  const args = inv.argv.slice(1);
  for (let k = 0; k < args.length; k++) if (args[k] === "-e" || args[k] === "--expression") scripts.push(args[++k] ?? "");
  const files = scripts.length > 0 ? operands : operands.slice(1);
  if (scripts.length === 0 && operands[0] !== undefined) scripts.push(operands[0]);
  const extended = flags.has("-E") || flags.has("-r");
  const program = parseSed(scripts.join("\n"), extended);
  if (typeof program === "string") return unknownResult(inv, `sed ${program}`);
  const inPlace = [...flags].some((f) => f === "-i") || inv.argv.slice(1).some((a) => /^-i/.test(a) || a === "--in-place");
  if (inPlace) {
    for (const f of files) {
      const text = await readText(inv.sh, f);
      const r = runSed(program, text, flags.has("-n"));
      if (typeof r !== "string") return unknownResult(inv, r.why);
      await writeTextFile(inv.sh, f, r, false, `edits ${f} (sed)`);
    }
    return 0;
  }
  const input = await inputOf(inv, files);
  if (isUnknown(input)) return unknownResult(inv, input.why);
  const r = runSed(program, input, flags.has("-n"));
  if (typeof r !== "string") return unknownResult(inv, r.why);
  inv.out.write(r);
  return 0;
};

type SedAddr = { line: number } | { last: true } | { re: RegExp };
interface SedCmd {
  a1?: SedAddr;
  a2?: SedAddr;
  zero?: boolean;
  negate: boolean;
  cmd: "s" | "d" | "p" | "q";
  re?: RegExp;
  repl?: string;
  global?: boolean;
  print?: boolean;
}

function parseSed(text: string, extended: boolean): SedCmd[] | string {
  const cmds: SedCmd[] = [];
  let i = 0;
  const readRe = (delim: string): string | undefined => {
    let s = "";
    for (; i < text.length && text[i] !== delim; i++) {
      if (text[i] === "\\" && i + 1 < text.length) {
        s += text[i + 1] === delim ? delim : `\\${text[i + 1]}`;
        i++;
        continue;
      }
      s += text[i];
    }
    if (text[i] !== delim) return undefined;
    i++;
    return s;
  };
  const readAddr = (): SedAddr | undefined | string => {
    if (/[0-9]/.test(text[i] ?? "")) {
      const m = /^[0-9]+/.exec(text.slice(i))!;
      i += m[0].length;
      return { line: Number(m[0]) };
    }
    if (text[i] === "$") {
      i++;
      return { last: true };
    }
    if (text[i] === "/") {
      i++;
      const r = readRe("/");
      const re = r === undefined ? undefined : posixRegExp(r, extended);
      if (!re) return "address";
      return { re };
    }
    return undefined;
  };
  while (i < text.length) {
    while (i < text.length && /[\s;]/.test(text[i]!)) i++;
    if (i >= text.length) break;
    const c: SedCmd = { negate: false, cmd: "p" };
    const a1 = readAddr();
    if (typeof a1 === "string") return a1;
    if (a1) {
      c.a1 = a1;
      if ("line" in a1 && a1.line === 0) c.zero = true;
      if (text[i] === ",") {
        i++;
        const a2 = readAddr();
        if (!a2 || typeof a2 === "string") return "range";
        c.a2 = a2;
      }
    }
    while (text[i] === " ") i++;
    if (text[i] === "!") {
      c.negate = true;
      i++;
    }
    const op = text[i++];
    if (op === "s") {
      const delim = text[i++]!;
      const re = readRe(delim);
      const repl = readRe(delim);
      if (re === undefined || repl === undefined) return `s${delim}`;
      let fl = "";
      while (i < text.length && /[gpI0-9]/.test(text[i]!)) fl += text[i++];
      const rx = posixRegExp(re, extended, `${fl.includes("g") ? "g" : ""}${fl.includes("I") ? "i" : ""}`);
      if (!rx || /[0-9]/.test(fl)) return `s${delim}${re}${delim}`;
      Object.assign(c, { cmd: "s", re: rx, repl, global: fl.includes("g"), print: fl.includes("p") });
    } else if (op === "d" || op === "p" || op === "q") c.cmd = op;
    else return `command ${op ?? "(none)"}`;
    cmds.push(c);
  }
  return cmds;
}

function runSed(program: SedCmd[], input: string, quiet: boolean): string | Unknown {
  const ls = lines(input);
  const trailing = input.endsWith("\n") || input === "";
  let out = "";
  const inRange = new Map<SedCmd, boolean>();
  const hit = (a: SedAddr, n: number, line: string): boolean => ("line" in a ? a.line === n : "last" in a ? n === ls.length : a.re.test(line));
  for (let n = 1; n <= ls.length; n++) {
    let line = ls[n - 1]!;
    let deleted = false;
    let quit = false;
    for (const c of program) {
      let sel: boolean;
      if (!c.a1) sel = true;
      else if (!c.a2) sel = hit(c.a1, n, line);
      else if (inRange.get(c)) {
        sel = true;
        if (hit(c.a2, n, line)) inRange.set(c, false);
      } else {
        sel = c.zero ? n === 1 || hit(c.a1, n, line) : hit(c.a1, n, line);
        if (sel) {
          // `0,/re/` may end on line 1; `N,/re/` looks from the next line.
          const endsHere = c.zero && hit(c.a2, n, line);
          inRange.set(c, !endsHere);
        }
      }
      if (c.negate) sel = !sel;
      if (!sel) continue;
      if (c.cmd === "d") {
        deleted = true;
        break;
      }
      if (c.cmd === "p") out += `${line}\n`;
      if (c.cmd === "q") {
        quit = true;
        break;
      }
      if (c.cmd === "s") {
        c.re!.lastIndex = 0;
        if (c.re!.test(line)) {
          c.re!.lastIndex = 0;
          line = line.replace(c.re!, (...m) => sedReplacement(c.repl!, m));
          if (c.print) out += `${line}\n`;
        }
      }
    }
    if (!deleted && !quiet) out += `${line}\n`;
    if (quit) break;
  }
  return trailing ? out : out.replace(/\n$/, "");
}

function sedReplacement(repl: string, m: unknown[]): string {
  const groups = m.slice(0, -2) as Array<string | undefined>;
  return repl.replace(/\\([0-9n&\\])|&/g, (t, e: string | undefined) => {
    if (t === "&") return groups[0] ?? "";
    if (e === "n") return "\n";
    if (e === "&") return "&";
    if (e === "\\") return "\\";
    return groups[Number(e)] ?? "";
  });
}

const headTail = (kind: "head" | "tail"): Tool =>
  async (inv) => {
    const { values, operands } = getopt(inv.argv.slice(1).map((a) => (/^-[0-9]+$/.test(a) ? `-n${a.slice(1)}` : a)), new Set(["-n", "-c"]));
    if (values.has("-c")) return unknownResult(inv, `${kind} -c`);
    const input = await inputOf(inv, operands);
    if (isUnknown(input)) return unknownResult(inv, input.why);
    const n = Number((values.get("-n") ?? "10").replace(/^\+/, ""));
    const ls = lines(input);
    const pick = kind === "head" ? ls.slice(0, n) : values.get("-n")?.startsWith("+") ? ls.slice(n - 1) : ls.slice(Math.max(0, ls.length - n));
    inv.out.write(pick.map((l) => `${l}\n`).join(""));
    return 0;
  };

const sort: Tool = async (inv) => {
  const { flags, operands } = getopt(inv.argv.slice(1));
  if (flags.has("-n") || flags.has("-k") || flags.has("-t") || flags.has("-V")) return unknownResult(inv, `sort ${inv.argv.slice(1).join(" ")}`);
  const input = await inputOf(inv, operands);
  if (isUnknown(input)) return unknownResult(inv, input.why);
  let ls = lines(input).sort(compareBytes);
  if (flags.has("-r")) ls.reverse();
  if (flags.has("-u")) ls = ls.filter((l, k) => k === 0 || l !== ls[k - 1]);
  inv.out.write(ls.map((l) => `${l}\n`).join(""));
  return 0;
};

const uniq: Tool = async (inv) => {
  const { flags, operands } = getopt(inv.argv.slice(1));
  const input = await inputOf(inv, operands);
  if (isUnknown(input)) return unknownResult(inv, input.why);
  const runs: Array<[string, number]> = [];
  for (const l of lines(input)) {
    const last = runs[runs.length - 1];
    if (last && last[0] === l) last[1]++;
    else runs.push([l, 1]);
  }
  const kept = runs.filter(([, n]) => (flags.has("-d") ? n > 1 : flags.has("-u") ? n === 1 : true));
  inv.out.write(kept.map(([l, n]) => (flags.has("-c") ? `${String(n).padStart(7)} ${l}\n` : `${l}\n`)).join(""));
  return 0;
};

const wc: Tool = async (inv) => {
  const { flags, operands } = getopt(inv.argv.slice(1));
  const input = await inputOf(inv, operands);
  if (isUnknown(input)) return unknownResult(inv, input.why);
  if (flags.has("-l")) inv.out.write(`${(input.match(/\n/g) ?? []).length}\n`);
  else if (flags.has("-c")) inv.out.write(`${Buffer.byteLength(input)}\n`);
  else return unknownResult(inv, "wc");
  return 0;
};

function digest(algorithm: string): Tool {
  return async (inv) => {
    const files = inv.argv.slice(1).filter((a) => !a.startsWith("-"));
    if (files.length === 0) {
      const input = inv.stdin ?? "";
      if (isUnknown(input)) return unknownResult(inv, input.why);
      inv.out.write(`${createHash(algorithm).update(input).digest("hex")}  -\n`);
      return 0;
    }
    let status: Status = 0;
    for (const f of files) {
      const e = inv.sh.fs.stat(f, inv.sh.cwd);
      if (e?.type !== "file") {
        status = 1;
        continue;
      }
      inv.out.write(`${createHash(algorithm).update(await readContent(e.content!)).digest("hex")}  ${f}\n`);
    }
    return status;
  };
}

const cmp: Tool = async (inv) => {
  const { operands } = getopt(inv.argv.slice(1));
  const [a, b] = operands;
  if (a === undefined || b === undefined) return 2;
  const ea = inv.sh.fs.stat(a, inv.sh.cwd);
  const eb = inv.sh.fs.stat(b, inv.sh.cwd);
  if (ea?.type !== "file" || eb?.type !== "file") return 2;
  return (await readContent(ea.content!)).equals(await readContent(eb.content!)) ? 0 : 1;
};

const readlink: Tool = (inv) => {
  const { flags, operands } = getopt(inv.argv.slice(1));
  const p = operands[0];
  if (p === undefined) return 1;
  if (flags.has("-f") || flags.has("-e") || flags.has("-m") || flags.has("--canonicalize") || inv.name === "realpath") {
    const real = inv.sh.fs.realpath(p, inv.sh.cwd);
    if (real === undefined) return 1;
    inv.out.write(`/${real}\n`);
    return 0;
  }
  const e = inv.sh.fs.lstat(p, inv.sh.cwd);
  if (e?.type !== "symlink") return 1;
  inv.out.write(`${e.linkname}\n`);
  return 0;
};

/** `stat [-L] -c FORMAT file`: %a %u %g %U %G %n %F %s %h. */
const stat: Tool = async (inv) => {
  const { flags, values, operands } = getopt(inv.argv.slice(1), new Set(["-c", "--format", "--printf"]));
  const format = values.get("-c") ?? values.get("--format");
  if (format === undefined) return unknownResult(inv, "stat without a format");
  let status: Status = 0;
  for (const p of operands) {
    const e = flags.has("-L") || flags.has("--dereference") ? inv.sh.fs.stat(p, inv.sh.cwd) : inv.sh.fs.lstat(p, inv.sh.cwd);
    if (!e) {
      status = 1;
      continue;
    }
    let bad = false;
    const names = { users: await readText(inv.sh, "/etc/passwd"), groups: await readText(inv.sh, "/etc/group") };
    const nameOf = (text: string, id: number): string => text.split("\n").find((l) => l.split(":")[2] === String(id))?.split(":")[0] ?? "UNKNOWN";
    const text = format.replace(/%([a-zA-Z%])/g, (m, c: string) => {
      switch (c) {
        case "a":
          return e.mode.toString(8);
        case "u":
          return String(e.uid);
        case "g":
          return String(e.gid);
        case "U":
          return nameOf(names.users, e.uid);
        case "G":
          return nameOf(names.groups, e.gid);
        case "n":
          return p;
        case "s":
          return String(e.content?.size ?? 0);
        case "F":
          return e.type === "dir" ? "directory" : e.type === "symlink" ? "symbolic link" : e.type === "file" ? ((e.content?.size ?? 0) === 0 ? "regular empty file" : "regular file") : e.type;
        case "%":
          return "%";
        default:
          bad = true;
          return m;
      }
    });
    if (bad) return unknownResult(inv, `stat -c ${format}`);
    inv.out.write(`${text}\n`);
  }
  return status;
};

/** `ls` only answers whether its operands exist (its listing format is not modelled). */
const ls: Tool = (inv) => {
  const { flags, operands } = getopt(inv.argv.slice(1));
  if (operands.length === 0) return unknownResult(inv, "ls of the current directory");
  let status: Status = 0;
  for (const p of operands) {
    const e = flags.has("-L") ? inv.sh.fs.stat(p, inv.sh.cwd) : inv.sh.fs.lstat(p, inv.sh.cwd);
    if (!e) status = 2;
  }
  const plain = [...flags].every((f) => f === "-1");
  if (plain && operands.length === 1 && inv.sh.fs.stat(operands[0]!, inv.sh.cwd)?.type === "dir") {
    // One directory, not to a terminal: its names one a line, without dot files, in the C
    // locale's order (scripts run with LC_ALL=C).
    const names = inv.sh.fs.readdir(operands[0]!, inv.sh.cwd).filter((n) => !n.startsWith("."));
    inv.out.write(names.sort(compareBytes).map((n) => `${n}\n`).join(""));
  } else if (flags.has("-l") || flags.has("-d") || flags.has("-1") || operands.some((p) => inv.sh.fs.stat(p, inv.sh.cwd)?.type === "dir")) {
    inv.out.write(new Unknown("the output of ls"));
  } else inv.out.write(operands.filter((p) => inv.sh.fs.lstat(p, inv.sh.cwd)).map((p) => `${p}\n`).join(""));
  return status;
};

/** `expr` with `+ - * / %`, comparisons, `:` match and `length`. */
const expr: Tool = (inv) => {
  const a = inv.argv.slice(1);
  let result: string | undefined;
  if (a.length === 3) {
    const [l, op, r] = a as [string, string, string];
    const num = /^-?[0-9]+$/;
    if (op === ":") {
      const re = posixRegExp(`^(?:${r})`, false);
      if (!re) return unknownResult(inv, `expr ${a.join(" ")}`);
      const m = re.exec(l);
      result = m ? (m[1] ?? String(m[0].length)) : r.includes("\\(") ? "" : "0";
    } else if (num.test(l) && num.test(r) && "+-*/%".includes(op)) {
      const x = BigInt(l);
      const y = BigInt(r);
      result = String(op === "+" ? x + y : op === "-" ? x - y : op === "*" ? x * y : op === "/" ? x / y : x % y);
    } else if (["=", "!=", "<", ">", "<=", ">="].includes(op)) {
      const c = num.test(l) && num.test(r) ? Number(l) - Number(r) : compareBytes(l, r);
      result = String(Number(op === "=" ? c === 0 : op === "!=" ? c !== 0 : op === "<" ? c < 0 : op === ">" ? c > 0 : op === "<=" ? c <= 0 : c >= 0));
    }
  } else if (a.length === 2 && a[0] === "length") result = String(a[1]!.length);
  if (result === undefined) return unknownResult(inv, `expr ${a.join(" ")}`);
  inv.out.write(`${result}\n`);
  return result === "" || result === "0" ? 1 : 0;
};

/** `id [-u|-g|-G] [-n] [user]`, from the tree's /etc/passwd and /etc/group. */
const id: Tool = async (inv) => {
  const { flags, operands } = getopt(inv.argv.slice(1));
  const name = operands[0] ?? "root";
  const passwd = await readText(inv.sh, "/etc/passwd");
  const line = passwd.split("\n").find((l) => l.split(":")[0] === name || (/^[0-9]+$/.test(name) && l.split(":")[2] === name));
  if (!line) return 1;
  const [user, , uid, gid] = line.split(":");
  const groups = (await readText(inv.sh, "/etc/group")).split("\n").map((l) => l.split(":")).filter((f) => f.length >= 4);
  const group = groups.find((f) => f[2] === gid)?.[0] ?? gid;
  if (flags.has("-u")) inv.out.write(`${flags.has("-n") ? user : uid}\n`);
  else if (flags.has("-g")) inv.out.write(`${flags.has("-n") ? group : gid}\n`);
  else if (flags.has("-G")) {
    // The login group first, then every group that lists the user as a member, in file order.
    const extra = groups.filter((f) => f[2] !== gid && f[3]!.split(",").includes(user!));
    inv.out.write(`${[flags.has("-n") ? group : gid, ...extra.map((f) => (flags.has("-n") ? f[0] : f[2]))].join(" ")}\n`);
  } else if (flags.size === 0) inv.out.write(`uid=${uid}(${user}) gid=${gid}(${group})\n`);
  else return unknownResult(inv, `id ${inv.argv.slice(1).join(" ")}`);
  return 0;
};

/** `getent passwd|group|shadow|gshadow [key...]` over the tree's files. */
const getent: Tool = async (inv) => {
  const [db, ...keys] = inv.argv.slice(1).filter((a) => !a.startsWith("-"));
  const file = { passwd: "/etc/passwd", group: "/etc/group", shadow: "/etc/shadow", gshadow: "/etc/gshadow" }[db ?? ""];
  if (!file) return unknownResult(inv, `getent ${db ?? ""}`);
  const entries = (await readText(inv.sh, file)).split("\n").filter((l) => l.includes(":"));
  const found = keys.length === 0 ? entries : keys.map((k) => entries.find((l) => l.split(":")[0] === k || (/^[0-9]+$/.test(k) && (db === "passwd" || db === "group") && l.split(":")[2] === k)));
  if (found.some((l) => l === undefined)) {
    inv.out.write(found.filter((l) => l !== undefined).map((l) => `${l}\n`).join(""));
    return 2;
  }
  inv.out.write(found.map((l) => `${l}\n`).join(""));
  return 0;
};

const uname: Tool = (inv) => {
  const args = inv.argv.slice(1);
  const machine = inv.sh.host.arch === "arm64" ? "aarch64" : inv.sh.host.arch === "amd64" ? "x86_64" : inv.sh.host.arch;
  if (args.length === 0 || args.every((a) => a === "-s" || a === "--kernel-name")) inv.out.write("Linux\n");
  else if (args.every((a) => a === "-m" || a === "--machine")) inv.out.write(`${machine}\n`);
  else return unknownResult(inv, "the build host's kernel");
  return 0;
};

/** `which name...`: the first executable of that name on PATH. */
const which: Tool = (inv) => {
  let status: Status = 0;
  for (const n of inv.argv.slice(1).filter((a) => !a.startsWith("-"))) {
    const found = inv.sh.which(n);
    if (found) inv.out.write(`${found}\n`);
    else status = 1;
  }
  return status;
};

/** `seq [FIRST [INCREMENT]] LAST` over integers, one number a line. */
const seq: Tool = (inv) => {
  const nums = inv.argv.slice(1);
  if (nums.length < 1 || nums.length > 3 || !nums.every((n) => /^-?[0-9]+$/.test(n))) return unknownResult(inv, `seq ${nums.join(" ")}`);
  const [first, step, last] = nums.length === 1 ? [1, 1, Number(nums[0])] : nums.length === 2 ? [Number(nums[0]), 1, Number(nums[1])] : nums.map(Number) as [number, number, number];
  if (step === 0) return 1;
  const out: number[] = [];
  for (let n = first; step > 0 ? n <= last : n >= last; n += step) out.push(n);
  inv.out.write(out.map((n) => `${n}\n`).join(""));
  return 0;
};

/** `pidof`/`pgrep`: no process of the image runs while it is built. */
const noProcess: Tool = () => 1;

export const TEXT_TOOLS: ReadonlyArray<[string, Tool]> = [
  ["basename", basename],
  ["dirname", dirname],
  ["cut", cut],
  ["tr", tr],
  ["sed", sed],
  ["grep", grep],
  ["egrep", grep],
  ["fgrep", grep],
  ["head", headTail("head")],
  ["tail", headTail("tail")],
  ["sort", sort],
  ["uniq", uniq],
  ["wc", wc],
  ["md5sum", digest("md5")],
  ["sha256sum", digest("sha256")],
  ["sha512sum", digest("sha512")],
  ["cmp", cmp],
  ["readlink", readlink],
  ["realpath", readlink],
  ["stat", stat],
  ["ls", ls],
  ["expr", expr],
  ["id", id],
  ["getent", getent],
  ["uname", uname],
  ["which", which],
  ["seq", seq],
  ["pidof", noProcess],
  ["pgrep", noProcess],
];
