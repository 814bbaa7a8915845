/**
 * UForge's search criteria: FIQL (the `query` parameter of every list), as UForge's
 * documentation describes it — `name=='nginx';version=='1.*'`. `;` is "and" and binds tighter
 * than `,` ("or"); parentheses group; a constraint is a selector (a field of the listed object,
 * dotted for a field of an embedded one: `targetFormat.name`), an operator (`==`, `!=`, and
 * FIQL's `=gt=`, `=ge=`, `=lt=`, `=le=`) and a value, quoted (`'...'`, `"..."`, a backslash
 * escapes the quote) or not (hammr sends `name==bash` as well as `name=='bash'`). `*` in a value
 * is a wildcard.
 *
 * The parser only builds a tree: nothing here is ever pasted into SQL. The store turns the tree
 * into Kysely expressions with the values as parameters; in-memory lists use {@link matchFiql},
 * whose wildcards are matched in linear time.
 */
import { KilnError } from "./errors.js";
import { Wildcard } from "./wildcard.js";

export type FiqlOperator = "==" | "!=" | "=gt=" | "=ge=" | "=lt=" | "=le=";

/** What a searchable field holds, which decides how a value is read and compared. */
export type FiqlFieldKind = "text" | "number" | "date" | "boolean";

export interface FiqlConstraint {
  kind: "constraint";
  selector: string;
  operator: FiqlOperator;
  /** The value, unquoted and unescaped. */
  value: string;
  /** Whether the value has a `*` (only with `==` and `!=`). */
  wildcard: boolean;
  /** 1-based character positions of the selector and of the value, for error messages. */
  at: number;
  valueAt: number;
}

export type FiqlNode = FiqlConstraint | { kind: "and" | "or"; items: FiqlNode[] };

const OPERATORS: readonly FiqlOperator[] = ["==", "!=", "=gt=", "=ge=", "=lt=", "=le="];

function malformed(text: string, index: number, what: string): never {
  const shown = text.length > 80 ? `${text.slice(Math.max(0, index - 30), index + 30)}` : text;
  throw new KilnError("invalidQuery", `malformed query at character ${index + 1}: ${what} (query: ${JSON.stringify(shown)})`);
}

/** Parses a FIQL expression; a syntax error is an `invalidQuery` (400) naming the character. */
export function parseFiql(text: string): FiqlNode {
  let i = 0;

  const orExpr = (): FiqlNode => {
    const items = [andExpr()];
    while (text[i] === ",") {
      i++;
      items.push(andExpr());
    }
    return items.length === 1 ? items[0]! : { kind: "or", items };
  };
  const andExpr = (): FiqlNode => {
    const items = [term()];
    while (text[i] === ";") {
      i++;
      items.push(term());
    }
    return items.length === 1 ? items[0]! : { kind: "and", items };
  };
  const term = (): FiqlNode => {
    if (text[i] === "(") {
      const open = i++;
      const inner = orExpr();
      if (text[i] !== ")") malformed(text, i, i >= text.length ? `the parenthesis opened at character ${open + 1} is not closed` : `expected ")", "," or ";", got ${JSON.stringify(text[i])}`);
      i++;
      return inner;
    }
    return constraint();
  };
  const constraint = (): FiqlConstraint => {
    const at = i;
    const selector = /^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*/.exec(text.slice(i))?.[0];
    if (selector === undefined) {
      malformed(text, i, i >= text.length ? "expected a field name, got the end of the query" : `expected a field name, got ${JSON.stringify(text[i])}`);
    }
    i += selector.length;
    const operator = OPERATORS.find((op) => text.startsWith(op, i));
    if (operator === undefined) malformed(text, i, `expected an operator (${OPERATORS.join(" ")}) after "${selector}"`);
    i += operator.length;
    const valueAt = i;
    let value = "";
    let wildcard = false;
    const quote = text[i];
    if (quote === "'" || quote === '"') {
      i++;
      for (;;) {
        if (i >= text.length) malformed(text, valueAt, `the quoted value is not closed (missing ${quote})`);
        const ch = text[i]!;
        if (ch === "\\" && i + 1 < text.length) {
          value += text[i + 1];
          i += 2;
          continue;
        }
        i++;
        if (ch === quote) break;
        if (ch === "*") wildcard = true;
        value += ch;
      }
    } else {
      while (i < text.length && !";,()".includes(text[i]!)) {
        if (text[i] === "'" || text[i] === '"') malformed(text, i, `a quote may only open a value, not appear inside one`);
        if (text[i] === "*") wildcard = true;
        value += text[i++];
      }
      if (value === "") malformed(text, i, `expected a value after "${selector}${operator}"`);
    }
    if (wildcard && operator !== "==" && operator !== "!=") malformed(text, valueAt, `wildcards (*) only go with == and !=`);
    return { kind: "constraint", selector, operator, value, wildcard, at: at + 1, valueAt: valueAt + 1 };
  };

  if (text.trim() === "") malformed(text, 0, "the query is empty");
  const tree = orExpr();
  if (i < text.length) malformed(text, i, `expected "," or ";" between constraints, got ${JSON.stringify(text[i])}`);
  return tree;
}

/** Every constraint of a tree, in order. */
export function constraints(node: FiqlNode): FiqlConstraint[] {
  return node.kind === "constraint" ? [node] : node.items.flatMap(constraints);
}

/** The refusal for a selector a list cannot search on. */
export function unknownSelector(c: FiqlConstraint, list: string, fields: readonly string[]): never {
  throw new KilnError("invalidQuery", `cannot search ${list} by "${c.selector}" (query character ${c.at}): searchable fields are ${fields.join(", ")}`);
}

/** A constraint's value read for a field of `kind`, or an `invalidQuery` pointing at the value. */
export function fiqlValue(c: FiqlConstraint, kind: FiqlFieldKind): string | number | boolean {
  const bad = (what: string): never => {
    throw new KilnError("invalidQuery", `${c.selector} ${what}, got ${JSON.stringify(c.value)} (query character ${c.valueAt})`);
  };
  if (kind === "text") return c.value;
  if (c.wildcard) bad("is not text: wildcards (*) do not apply");
  if (kind === "number") {
    if (!/^-?[0-9]{1,15}(?:\.[0-9]+)?$/.test(c.value)) bad("is a number");
    return Number(c.value);
  }
  if (kind === "boolean") {
    if (!/^(true|false)$/i.test(c.value)) bad("is true or false");
    return c.value.toLowerCase() === "true";
  }
  const ms = /^-?[0-9]{1,15}$/.test(c.value) ? Number(c.value) : Date.parse(c.value);
  if (!Number.isFinite(ms)) bad("is a date (2024-05-01T12:00:00Z or milliseconds since 1970)");
  return ms;
}

/** Compares two values of one kind: <0, 0, >0 (text without case, as the database does). */
function compare(a: string | number | boolean, b: string | number | boolean): number {
  if (typeof a === "string" && typeof b === "string") {
    const x = a.toLowerCase();
    const y = b.toLowerCase();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  return Number(a) - Number(b);
}

/** The kind of an in-memory value (for {@link matchFiql}). */
function kindOf(v: unknown): FiqlFieldKind {
  return typeof v === "number" ? "number" : typeof v === "boolean" ? "boolean" : v instanceof Date ? "date" : "text";
}

/**
 * Whether an in-memory object matches: `valueOf` reads a selector's value (`undefined` when the
 * object has none, which matches only `!=`). Text compares without case; wildcards in linear time.
 */
export function matchFiql(node: FiqlNode, valueOf: (selector: string) => unknown): boolean {
  if (node.kind !== "constraint") return node.kind === "and" ? node.items.every((n) => matchFiql(n, valueOf)) : node.items.some((n) => matchFiql(n, valueOf));
  const raw = valueOf(node.selector);
  if (raw === undefined || raw === null) return node.operator === "!=";
  const kind = kindOf(raw);
  const have = raw instanceof Date ? raw.getTime() : (raw as string | number | boolean);
  const want = fiqlValue(node, kind);
  let equal: boolean;
  if (kind === "text" && node.wildcard) equal = wildcardOf(node).test(String(have));
  else equal = compare(have, want) === 0;
  switch (node.operator) {
    case "==":
      return equal;
    case "!=":
      return !equal;
    case "=gt=":
      return compare(have, want) > 0;
    case "=ge=":
      return compare(have, want) >= 0;
    case "=lt=":
      return compare(have, want) < 0;
    case "=le=":
      return compare(have, want) <= 0;
  }
}

const compiled = new WeakMap<FiqlConstraint, Wildcard>();
function wildcardOf(c: FiqlConstraint): Wildcard {
  let w = compiled.get(c);
  if (w === undefined) compiled.set(c, (w = new Wildcard(c.value)));
  return w;
}

/** A wildcard value as a SQL LIKE pattern with `!` as the escape character (`%`, `_`, `!` match themselves). */
export function likePattern(value: string): string {
  return value.replace(/[!%_]/g, (ch) => `!${ch}`).replace(/\*/g, "%");
}
