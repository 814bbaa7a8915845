/**
 * `test` / `[`: string, integer and file tests, `!`, `-a`, `-o` and parentheses, evaluated
 * against the tree the script sees (files are checked as root would: `-r` and `-w` hold for any
 * existing file, `-x` for a directory or a file with an execute bit).
 */
import type { Interpreter } from "./interpret.js";
import type { Status } from "./values.js";

const UNARY = new Set(["-e", "-f", "-d", "-L", "-h", "-x", "-r", "-w", "-s", "-n", "-z", "-b", "-c", "-p", "-S", "-g", "-u", "-k", "-t", "-O", "-G"]);
const BINARY = new Set(["=", "==", "!=", "-eq", "-ne", "-lt", "-le", "-gt", "-ge", "-nt", "-ot", "-ef", "<", ">"]);

export function testExpression(sh: Interpreter, args: readonly string[]): Status {
  if (args.length === 0) return 1;
  let pos = 0;
  const peek = (): string | undefined => args[pos];
  const error = { bad: false };

  const primary = (): boolean => {
    const a = args[pos];
    if (a === undefined) {
      error.bad = true;
      return false;
    }
    if (a === "!" && pos + 1 < args.length) {
      pos++;
      return !primary();
    }
    if (a === "(" && pos + 2 < args.length) {
      pos++;
      const v = orExpr();
      if (args[pos] === ")") pos++;
      else error.bad = true;
      return v;
    }
    // A binary test when the next word is an operator and a right operand follows.
    if (pos + 2 < args.length && BINARY.has(args[pos + 1]!)) {
      const l = a;
      const op = args[pos + 1]!;
      const r = args[pos + 2]!;
      pos += 3;
      return binary(sh, l, op, r, error);
    }
    if (UNARY.has(a) && pos + 1 < args.length) {
      const operand = args[pos + 1]!;
      pos += 2;
      return unary(sh, a, operand);
    }
    pos++;
    return a !== "";
  };
  const andExpr = (): boolean => {
    let v = primary();
    while (peek() === "-a") {
      pos++;
      const r = primary();
      v = v && r;
    }
    return v;
  };
  const orExpr = (): boolean => {
    let v = andExpr();
    while (peek() === "-o") {
      pos++;
      const r = andExpr();
      v = v || r;
    }
    return v;
  };
  const v = orExpr();
  if (error.bad || pos !== args.length) return 2;
  return v ? 0 : 1;
}

function unary(sh: Interpreter, op: string, operand: string): boolean {
  switch (op) {
    case "-n":
      return operand !== "";
    case "-z":
      return operand === "";
    case "-t":
      return false;
    case "-L":
    case "-h":
      return sh.fs.lstat(operand, sh.cwd)?.type === "symlink";
  }
  const e = sh.fs.stat(operand, sh.cwd);
  if (!e) return false;
  switch (op) {
    case "-e":
    case "-r":
    case "-w":
    case "-O":
    case "-G":
      return true;
    case "-f":
      return e.type === "file";
    case "-d":
      return e.type === "dir";
    case "-x":
      return e.type === "dir" || (e.mode & 0o111) !== 0;
    case "-s":
      return e.type !== "file" || (e.content?.size ?? 0) > 0;
    case "-b":
      return e.type === "block";
    case "-c":
      return e.type === "char";
    case "-p":
      return e.type === "fifo";
    case "-S":
      return false;
    case "-g":
      return (e.mode & 0o2000) !== 0;
    case "-u":
      return (e.mode & 0o4000) !== 0;
    case "-k":
      return (e.mode & 0o1000) !== 0;
    default:
      return false;
  }
}

function binary(sh: Interpreter, l: string, op: string, r: string, error: { bad: boolean }): boolean {
  switch (op) {
    case "=":
    case "==":
      return l === r;
    case "!=":
      return l !== r;
    case "<":
      return l < r;
    case ">":
      return l > r;
    case "-nt":
    case "-ot":
      return false;
    case "-ef":
      return sh.fs.realpath(l, sh.cwd) !== undefined && sh.fs.realpath(l, sh.cwd) === sh.fs.realpath(r, sh.cwd);
  }
  if (!/^\s*-?[0-9]+\s*$/.test(l) || !/^\s*-?[0-9]+\s*$/.test(r)) {
    error.bad = true;
    return false;
  }
  const a = Number(l);
  const b = Number(r);
  switch (op) {
    case "-eq":
      return a === b;
    case "-ne":
      return a !== b;
    case "-lt":
      return a < b;
    case "-le":
      return a <= b;
    case "-gt":
      return a > b;
    default:
      return a >= b;
  }
}
