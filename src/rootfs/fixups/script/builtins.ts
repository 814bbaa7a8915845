/**
 * The shell's own commands (what dash implements itself): they change the interpreter's state
 * or answer questions, and never have an effect on the image worth reporting.
 */
import type { Invocation, Tool } from "./interpret.js";
import { parseScript } from "./parse.js";
import { isUnknown, Unknown, type Status, type Value } from "./values.js";
import { testExpression } from "./test-expr.js";

const ok = (): Status => 0;

function setBuiltin(inv: Invocation): Status {
  const { sh } = inv;
  const args = inv.argv.slice(1);
  for (let k = 0; k < args.length; k++) {
    const a = args[k]!;
    if (a === "--") {
      sh.positional = args.slice(k + 1);
      return 0;
    }
    // `-o NAME` before the letter flags: `-o` matches their pattern too, and its NAME is not an
    // operand (`set -o pipefail` must not make "pipefail" the script's $1).
    if (a === "-o" || a === "+o") {
      if (args[k + 1] === "errexit") sh.errexit = a === "-o";
      k++;
      continue;
    }
    if (/^[-+][a-zA-Z]+$/.test(a)) {
      if (a.includes("e")) sh.errexit = a.startsWith("-");
      continue;
    }
    sh.positional = args.slice(k);
    return 0;
  }
  return 0;
}

function numberArg(inv: Invocation, fallback: number): number | Unknown {
  const a = inv.argv[1];
  if (a === undefined) return fallback;
  return /^[0-9]+$/.test(a) ? Number(a) : new Unknown(`${inv.name} ${a}`);
}

function exitBuiltin(inv: Invocation): Status {
  const n = inv.argv[1] === undefined ? inv.sh.lastStatus : numberArg(inv, 0);
  if (inv.sh.uncertain.length > 0) return 0;
  return inv.sh.exit(n);
}

function returnBuiltin(inv: Invocation): Status {
  const n = inv.argv[1] === undefined ? inv.sh.lastStatus : numberArg(inv, 0);
  if (inv.sh.uncertain.length > 0) return isUnknown(n) ? n : n;
  return inv.sh.return(n);
}

function loopBuiltin(kind: "break" | "continue"): Tool {
  return (inv): Status => {
    const n = numberArg(inv, 1);
    if (inv.sh.uncertain.length > 0) return 0;
    return inv.sh.loop(kind, isUnknown(n) ? 1 : Math.max(1, n));
  };
}

function shift(inv: Invocation): Status {
  const n = numberArg(inv, 1);
  if (isUnknown(n) || n > inv.sh.positional.length) return 1;
  inv.sh.positional = inv.sh.positional.slice(n);
  return 0;
}

/** `local`, `export`, `readonly`: assignments (`name=value` words) and declarations. */
function declare(kind: "local" | "export" | "readonly"): Tool {
  return (inv) => {
    for (const a of inv.argv.slice(1)) {
      if (a.startsWith("-")) continue;
      const eq = a.indexOf("=");
      const name = eq < 0 ? a : a.slice(0, eq);
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) return 1;
      if (kind === "local") inv.sh.makeLocal(name);
      if (eq >= 0) inv.sh.setVar(name, a.slice(eq + 1));
      else if (kind === "local") inv.sh.setVar(name, "");
    }
    return 0;
  };
}

function unset(inv: Invocation): Status {
  for (const a of inv.argv.slice(1)) {
    if (a === "-v") continue;
    if (a === "-f") return 0;
    inv.sh.unsetVar(a);
  }
  return 0;
}

function cd(inv: Invocation): Status {
  const target = inv.argv[1] ?? "/root";
  const real = inv.sh.fs.realpath(target, inv.sh.cwd);
  if (real === undefined || inv.sh.fs.lstat(real)?.type !== "dir") return 1;
  if (inv.sh.uncertain.length === 0) inv.sh.cwd = real;
  return 0;
}

function umask(inv: Invocation): Status {
  const a = inv.argv[1];
  if (a === undefined) {
    inv.out.write(`${inv.sh.umask.toString(8).padStart(4, "0")}\n`);
    return 0;
  }
  if (!/^[0-7]{1,4}$/.test(a)) return 1;
  if (inv.sh.uncertain.length === 0) inv.sh.umask = parseInt(a, 8);
  return 0;
}

function echo(inv: Invocation): Status {
  let args = inv.argv.slice(1);
  let newline = true;
  // dash's echo takes -n only, and always interprets backslash escapes.
  if (args[0] === "-n") {
    newline = false;
    args = args.slice(1);
  }
  let text = args.join(" ");
  let stop = false;
  text = text.replace(/\\(c|n|t|\\|0[0-7]{0,3}|a|b|f|r|v)/g, (m, e: string) => {
    if (stop) return "";
    switch (e) {
      case "c":
        stop = true;
        return "";
      case "n":
        return "\n";
      case "t":
        return "\t";
      case "\\":
        return "\\";
      case "a":
        return "\x07";
      case "b":
        return "\b";
      case "f":
        return "\f";
      case "r":
        return "\r";
      case "v":
        return "\v";
      default:
        return String.fromCharCode(parseInt(e.slice(1) || "0", 8));
    }
  });
  if (stop) {
    const i = text.indexOf("\\c");
    if (i >= 0) text = text.slice(0, i);
    newline = false;
  }
  inv.out.write(newline ? `${text}\n` : text);
  return 0;
}

/** printf FORMAT [ARG...]: %s %d %b %%, backslash escapes, the format reused for extra arguments. */
function printf(inv: Invocation): Status {
  const [format, ...args] = inv.argv.slice(1);
  if (format === undefined) return 1;
  let out = "";
  let k = 0;
  do {
    out += format.replace(/%(-?[0-9]*)([sdbc%])|\\(n|t|\\|0[0-7]{0,3}|")/g, (m, width: string | undefined, conv: string | undefined, esc: string | undefined) => {
      if (esc !== undefined) return esc === "n" ? "\n" : esc === "t" ? "\t" : esc === "\\" ? "\\" : esc === '"' ? '"' : String.fromCharCode(parseInt(esc.slice(1) || "0", 8));
      if (conv === "%") return "%";
      const a = args[k++] ?? "";
      let v = conv === "d" ? String(Number.parseInt(a || "0", 10) || 0) : conv === "b" ? a.replace(/\\n/g, "\n").replace(/\\t/g, "\t") : conv === "c" ? a.slice(0, 1) : a;
      const w = Number(width ?? "");
      if (width && Math.abs(w) > v.length) v = w < 0 ? v.padEnd(-w) : v.padStart(w);
      return v;
    });
  } while (k > 0 && k < args.length);
  inv.out.write(out);
  return 0;
}

function test(inv: Invocation): Status {
  let args = inv.argv.slice(1);
  if (inv.argv[0] === "[") {
    if (args[args.length - 1] !== "]") return 2;
    args = args.slice(0, -1);
  }
  return testExpression(inv.sh, args);
}

async function evalBuiltin(inv: Invocation): Promise<Status> {
  const text = inv.argv.slice(1).join(" ");
  try {
    return await inv.sh.runList(parseScript(text), inv.out, inv.input);
  } catch (err) {
    if (err instanceof Error && err.name === "ShellSyntaxError") {
      inv.sh.unreproduced(`evaluates \`${text}\`, which Kiln cannot read`);
      return new Unknown(`eval ${text}`);
    }
    throw err;
  }
}

async function dot(inv: Invocation): Promise<Status> {
  const file = inv.argv[1];
  if (file === undefined) return 2;
  const ran = inv.sh.host.source(inv.sh, file, inv.argv.slice(2));
  if (ran) return ran;
  inv.sh.unreproduced(`reads and runs ${file}, which Kiln does not follow`);
  return new Unknown(`the result of . ${file}`);
}

/** `read [-r] name...`: one line of the input, split on blanks into the names (the last takes the rest). */
function read(inv: Invocation): Status {
  const raw = inv.argv.includes("-r");
  const names = inv.argv.slice(1).filter((a) => !a.startsWith("-"));
  const line = inv.input ? inv.input.line() : new Unknown("the terminal's input");
  if (isUnknown(line)) {
    for (const n of names) inv.sh.setVar(n, line);
    return line;
  }
  if (line === undefined) {
    for (const n of names) inv.sh.setVar(n, "");
    return 1;
  }
  const text = raw ? line : line.replace(/\\(.)/g, "$1");
  const trimmed = text.replace(/^[ \t]+|[ \t]+$/g, "");
  const fields = trimmed === "" ? [] : trimmed.split(/[ \t]+/);
  names.forEach((n, k) => {
    if (k === names.length - 1) {
      // The last name gets the rest of the line, inner blanks kept.
      let rest = trimmed;
      for (let j = 0; j < k; j++) rest = rest.replace(/^[^ \t]*[ \t]*/, "");
      inv.sh.setVar(n, rest);
    } else inv.sh.setVar(n, fields[k] ?? "");
  });
  return 0;
}

/** `command -v name`, `command name args` (skipping functions). */
async function command(inv: Invocation): Promise<Status> {
  const args = inv.argv.slice(1);
  if (args[0] === "-v" || args[0] === "-V") {
    const name = args[1];
    if (name === undefined) return 1;
    if (BUILTINS[name] || inv.sh.functions.has(name)) {
      inv.out.write(`${name}\n`);
      return 0;
    }
    const found = inv.sh.which(name);
    if (!found) return 127;
    inv.out.write(`${found}\n`);
    return 0;
  }
  if (args.length === 0) return 0;
  return inv.sh.invoke(args, inv.out, inv.input, inv.text);
}

/** `type name` / `hash name`: whether the name can be run. */
function typeBuiltin(inv: Invocation): Status {
  const name = inv.argv[1];
  if (name === undefined) return 1;
  if (BUILTINS[name] || inv.sh.functions.has(name)) {
    inv.out.write(`${name} is a shell builtin\n`);
    return 0;
  }
  const found = inv.sh.which(name);
  if (!found) return 127;
  inv.out.write(`${name} is ${found}\n`);
  return 0;
}

/** Where `getopts` is inside a group of letters (`-qv`), per shell: sh keeps it out of sight too. */
const getoptsAt = new WeakMap<object, number>();

/** `getopts OPTSTRING NAME [ARG...]`: POSIX option parsing over the arguments (or $@), OPTIND/OPTARG. */
function getopts(inv: Invocation): Status {
  const { sh } = inv;
  const [spec, name] = inv.argv.slice(1);
  if (spec === undefined || name === undefined) return 2;
  const args = inv.argv.length > 3 ? inv.argv.slice(3) : sh.positional;
  const optind = sh.getVar("OPTIND");
  if (isUnknown(optind)) return optind;
  let index = Number(optind || "1");
  let at = getoptsAt.get(sh) ?? 0;
  const done = (): Status => {
    sh.setVar(name, "?");
    sh.setVar("OPTIND", String(index));
    getoptsAt.set(sh, 0);
    return 1;
  };
  const arg = args[index - 1];
  if (arg === undefined) return done();
  if (isUnknown(arg)) return arg;
  if (at === 0) {
    if (arg === "--") {
      index++;
      return done();
    }
    if (!arg.startsWith("-") || arg === "-") return done();
    at = 1;
  }
  const letter = arg[at]!;
  at++;
  const k = spec.replace(/^:/, "").indexOf(letter);
  const takesValue = k >= 0 && spec.replace(/^:/, "")[k + 1] === ":";
  let value: Value | undefined;
  if (takesValue) {
    value = at < arg.length ? arg.slice(at) : args[index];
    index += at < arg.length ? 1 : 2;
    at = 0;
  } else if (at >= arg.length) {
    index++;
    at = 0;
  }
  getoptsAt.set(sh, at);
  sh.setVar("OPTIND", String(index));
  if (k < 0 || letter === ":" || (takesValue && value === undefined)) {
    sh.setVar(name, "?");
    sh.unsetVar("OPTARG");
    return 0;
  }
  sh.setVar(name, letter);
  if (takesValue) sh.setVar("OPTARG", value!);
  else sh.unsetVar("OPTARG");
  return 0;
}

export const BUILTINS: Readonly<Record<string, Tool>> = {
  getopts,
  ":": ok,
  true: ok,
  false: () => 1,
  set: setBuiltin,
  exit: exitBuiltin,
  return: returnBuiltin,
  break: loopBuiltin("break"),
  continue: loopBuiltin("continue"),
  shift,
  local: declare("local"),
  export: declare("export"),
  readonly: declare("readonly"),
  unset,
  cd,
  umask,
  echo,
  printf,
  test,
  "[": test,
  eval: evalBuiltin,
  ".": dot,
  source: dot,
  read,
  trap: ok,
  command,
  type: typeBuiltin,
  hash: typeBuiltin,
  wait: ok,
  sleep: ok,
};
