/**
 * Bundle restriction rules: which distributions and target formats a software bundle may be
 * used with, in UForge's rule language.
 *
 *   rule    := or
 *   or      := and ( "||" and )*
 *   and     := unary ( "&&" unary )*
 *   unary   := "!" unary | "(" or ")" | atom
 *   atom    := Object "#" field ( "=" | "!=" ) value
 *   Object  := "Distribution" | "TargetFormat"
 *   value   := a bare word (letters, digits, . _ - + * :) or a quoted string ('...' or "...")
 *
 * `Distribution` has `family`, `pkgType`, `name`, `version`, `arch`; `TargetFormat` has `name` and
 * `type`. Comparisons ignore case, and `*` in a value matches any run of characters
 * (`Distribution#version=12*`), in time linear whatever the rule ({@link Wildcard}). An empty rule
 * allows everything.
 */
import { KilnError } from "./errors.js";
import { Wildcard } from "./wildcard.js";

export type RuleObject = "Distribution" | "TargetFormat";

export const RULE_FIELDS: Record<RuleObject, readonly string[]> = {
  Distribution: ["family", "pkgType", "name", "version", "arch"],
  TargetFormat: ["name", "type"],
};

export type RuleNode =
  | { kind: "or" | "and"; left: RuleNode; right: RuleNode }
  | { kind: "not"; operand: RuleNode }
  | { kind: "cmp"; object: RuleObject; field: string; negated: boolean; value: string; matcher: Wildcard };

/** The facts a rule is evaluated against. */
export interface RuleSubject {
  Distribution?: Partial<Record<string, string>>;
  TargetFormat?: Partial<Record<string, string>>;
}

interface Token {
  type: "word" | "string" | "op" | "eof";
  text: string;
  pos: number;
}

function syntaxError(rule: string, pos: number, what: string): never {
  const caret = `${rule}\n${" ".repeat(Math.max(0, pos))}^`;
  throw new KilnError("restrictionSyntax", `restriction rule syntax error at position ${pos + 1}: ${what}\n${caret}`);
}

function tokenize(rule: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < rule.length) {
    const c = rule[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const two = rule.slice(i, i + 2);
    if (two === "&&" || two === "||" || two === "!=") {
      out.push({ type: "op", text: two, pos: i });
      i += 2;
      continue;
    }
    if ("()=#!".includes(c)) {
      out.push({ type: "op", text: c, pos: i });
      i++;
      continue;
    }
    if (c === '"' || c === "'") {
      const end = rule.indexOf(c, i + 1);
      if (end < 0) syntaxError(rule, i, "unterminated quoted value");
      out.push({ type: "string", text: rule.slice(i + 1, end), pos: i });
      i = end + 1;
      continue;
    }
    const m = /^[A-Za-z0-9._+*:\-/]+/.exec(rule.slice(i));
    if (!m) syntaxError(rule, i, `unexpected character "${c}"`);
    out.push({ type: "word", text: m[0], pos: i });
    i += m[0].length;
  }
  out.push({ type: "eof", text: "", pos: rule.length });
  return out;
}

/** Parses a rule; a syntax error is a `400` whose message points at the position. */
export function parseRestrictionRule(rule: string): RuleNode | undefined {
  if (rule.trim() === "") return undefined;
  const tokens = tokenize(rule);
  let p = 0;
  const peek = (): Token => tokens[p]!;
  const next = (): Token => tokens[p++]!;
  const expectOp = (text: string, what: string): Token => {
    const t = next();
    if (t.type !== "op" || t.text !== text) syntaxError(rule, t.pos, `expected ${what}, found ${t.type === "eof" ? "end of rule" : `"${t.text}"`}`);
    return t;
  };

  const parseAtom = (): RuleNode => {
    const obj = next();
    if (obj.type !== "word" || !(obj.text in RULE_FIELDS)) {
      syntaxError(rule, obj.pos, `expected Distribution or TargetFormat, found ${obj.type === "eof" ? "end of rule" : `"${obj.text}"`}`);
    }
    const object = obj.text as RuleObject;
    expectOp("#", `"#" after ${object}`);
    const field = next();
    if (field.type !== "word" || !RULE_FIELDS[object].includes(field.text)) {
      syntaxError(rule, field.pos, `unknown field "${field.text}" of ${object} (expected one of ${RULE_FIELDS[object].join(", ")})`);
    }
    const op = next();
    if (op.type !== "op" || (op.text !== "=" && op.text !== "!=")) syntaxError(rule, op.pos, `expected "=" or "!=" after ${object}#${field.text}`);
    const value = next();
    if (value.type !== "word" && value.type !== "string") syntaxError(rule, value.pos, `expected a value after "${op.text}"`);
    return { kind: "cmp", object, field: field.text, negated: op.text === "!=", value: value.text, matcher: new Wildcard(value.text) };
  };

  const parseUnary = (): RuleNode => {
    const t = peek();
    if (t.type === "op" && t.text === "!") {
      next();
      return { kind: "not", operand: parseUnary() };
    }
    if (t.type === "op" && t.text === "(") {
      next();
      const inner = parseOr();
      expectOp(")", '")"');
      return inner;
    }
    return parseAtom();
  };
  const parseAnd = (): RuleNode => {
    let left = parseUnary();
    while (peek().type === "op" && peek().text === "&&") {
      next();
      left = { kind: "and", left, right: parseUnary() };
    }
    return left;
  };
  function parseOr(): RuleNode {
    let left = parseAnd();
    while (peek().type === "op" && peek().text === "||") {
      next();
      left = { kind: "or", left, right: parseAnd() };
    }
    return left;
  }

  const tree = parseOr();
  const rest = peek();
  if (rest.type !== "eof") syntaxError(rule, rest.pos, `unexpected "${rest.text}"`);
  return tree;
}

/**
 * Evaluates a parsed rule. A field the subject does not describe compares as the empty string;
 * to ask about a distribution alone, use {@link allowsDistribution}, which tries every format.
 */
export function evaluateRule(node: RuleNode | undefined, subject: RuleSubject): boolean {
  if (!node) return true;
  switch (node.kind) {
    case "or":
      return evaluateRule(node.left, subject) || evaluateRule(node.right, subject);
    case "and":
      return evaluateRule(node.left, subject) && evaluateRule(node.right, subject);
    case "not":
      return !evaluateRule(node.operand, subject);
    case "cmp": {
      const actual = subject[node.object]?.[node.field] ?? "";
      return node.matcher.test(actual) !== node.negated;
    }
  }
}

/** True when some format of `formats` makes the rule hold for the distribution. */
export function allowsDistribution(node: RuleNode | undefined, dist: Record<string, string>, formats: ReadonlyArray<Record<string, string>>): boolean {
  if (!node) return true;
  return formats.some((f) => evaluateRule(node, { Distribution: dist, TargetFormat: f }));
}
