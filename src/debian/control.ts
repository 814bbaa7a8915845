/**
 * deb822 control data: the paragraph format of `Packages` indices, `Release` files, a `.deb`'s
 * `control` file and dpkg's `status` database (Debian policy 5.1, deb822(5)).
 *
 * A full Debian `Packages` index is ~50 MB and ~64k paragraphs, parsed on every cold build, so
 * the parser walks the text once with `indexOf` and slices whole fields rather than building
 * values line by line.
 */
import { KilnError } from "../domain/errors.js";
import type { Paragraph } from "./types.js";

/** Options of {@link parseParagraphs}. */
export interface ParseOptions {
  /**
   * Accept `#` comment lines. Only source package control files (`debian/control`) may carry
   * them; in a `Packages` index, `Release` or binary control file they are a syntax error.
   */
  comments?: boolean;
}

/** A {@link Paragraph} over a list of fields; the case-insensitive index is built on first lookup. */
class ControlParagraph implements Paragraph {
  private index: Map<string, string> | undefined;

  constructor(readonly fields: ReadonlyArray<readonly [name: string, value: string]>) {}

  get(name: string): string | undefined {
    this.index ??= indexFields(this.fields);
    return this.index.get(name.toLowerCase());
  }
}

function indexFields(fields: ReadonlyArray<readonly [string, string]>): Map<string, string> {
  const index = new Map<string, string>();
  for (const [n, v] of fields) index.set(n.toLowerCase(), v);
  return index;
}

/**
 * A paragraph of a parsed text that was checked but not yet cut into fields. A `Packages` index
 * is parsed on every cold build, but only a hundred of its 64k paragraphs are ever read whole
 * (for dpkg's `status` file); the rest are only visited by {@link readFields}.
 */
class TextParagraph implements Paragraph {
  private cut: ReadonlyArray<readonly [string, string]> | undefined;
  private index: Map<string, string> | undefined;

  constructor(
    readonly text: string,
    readonly start: number,
    readonly end: number,
  ) {}

  get fields(): ReadonlyArray<readonly [name: string, value: string]> {
    if (this.cut === undefined) {
      const out: Array<readonly [string, string]> = [];
      const text = this.text;
      scanFields(text, this.start, this.end, (ns, colon, fe, ve) => {
        out.push([text.slice(ns, colon), cutValue(text, colon, fe, ve)]);
      });
      this.cut = out;
    }
    return this.cut;
  }

  get(name: string): string | undefined {
    this.index ??= indexFields(this.fields);
    return this.index.get(name.toLowerCase());
  }
}

/**
 * Visits the fields of an already validated stretch of text. The visitor gets the bounds of the
 * name and of the value, so names and values nobody wants are never cut out (see
 * {@link cutValue}): on a 64k-stanza index those slices are most of the garbage.
 */
function scanFields(
  text: string,
  start: number,
  end: number,
  visit: (nameStart: number, colon: number, firstLineEnd: number, valueEnd: number) => void,
): void {
  let pos = start;
  while (pos < end) {
    let lineEnd = text.indexOf("\n", pos);
    if (lineEnd === -1 || lineEnd > end) lineEnd = end;
    const c = text.charCodeAt(pos);
    if (c === HASH || isBlankLine(text, pos, lineEnd)) {
      pos = lineEnd + 1;
      continue;
    }
    const colon = text.indexOf(":", pos);
    let fieldEnd = lineEnd;
    while (fieldEnd + 1 < end) {
      const next = text.charCodeAt(fieldEnd + 1);
      if (next !== SPACE && next !== TAB) break;
      let nextEnd = text.indexOf("\n", fieldEnd + 1);
      if (nextEnd === -1 || nextEnd > end) nextEnd = end;
      fieldEnd = nextEnd;
    }
    visit(pos, colon, lineEnd, fieldEnd);
    pos = fieldEnd + 1;
  }
}

/**
 * A field's value as dpkg keeps it (lib/dpkg/parse.c): blanks after the colon and at the very end
 * of the value dropped, everything in between kept byte for byte — a multi-line value keeps the
 * trailing blanks of its first line (libgdbm6's Description has one), each continuation line
 * loses only its first blank.
 */
function cutValue(text: string, colon: number, firstLineEnd: number, valueEnd: number): string {
  if (valueEnd === firstLineEnd) return text.slice(colon + 1, firstLineEnd).trim();
  const first = text.slice(colon + 1, firstLineEnd).trimStart();
  return (first + text.slice(firstLineEnd, valueEnd).replace(/\n[ \t]/g, "\n")).trimEnd();
}

/**
 * A compiled set of wanted field names for {@link readFields}, built once and reused for every
 * paragraph of an index.
 */
export class FieldSelection {
  /** Wanted names in lower case, bucketed by length and first letter. */
  private readonly buckets = new Map<number, Array<[lower: string, slot: number]>>();
  private readonly byName = new Map<string, number>();
  readonly size: number;

  constructor(names: readonly string[]) {
    names.forEach((n, i) => {
      const lower = n.toLowerCase();
      const key = bucketKey(lower.length, lower.charCodeAt(0));
      const list = this.buckets.get(key) ?? [];
      list.push([lower, i]);
      this.buckets.set(key, list);
      this.byName.set(lower, i);
    });
    this.size = names.length;
  }

  /** The slot of a field name, or -1. */
  slotOf(name: string): number {
    return this.byName.get(name.toLowerCase()) ?? -1;
  }

  /** The slot of the name at `text[start, end)`, compared in place without cutting it out. */
  slotAt(text: string, start: number, end: number): number {
    const list = this.buckets.get(bucketKey(end - start, text.charCodeAt(start) | 0x20));
    if (list === undefined) return -1;
    outer: for (const [lower, slot] of list) {
      for (let i = 1; i < lower.length; i++) {
        const c = text.charCodeAt(start + i);
        // ASCII case folding; field names are ASCII (deb822).
        if (c !== lower.charCodeAt(i) && (c < 0x41 || c > 0x5a || (c | 0x20) !== lower.charCodeAt(i))) continue outer;
      }
      return slot;
    }
    return -1;
  }
}

function bucketKey(length: number, firstLower: number): number {
  return length * 128 + firstLower;
}

/**
 * The values of the selected fields of a paragraph, in the selection's order; much cheaper than
 * `fields` on a paragraph from {@link parseParagraphs}, as unwanted fields are never cut out.
 */
export function readFields(p: Paragraph, selection: FieldSelection): Array<string | undefined> {
  const out = new Array<string | undefined>(selection.size).fill(undefined);
  if (p instanceof TextParagraph) {
    const text = p.text;
    scanFields(text, p.start, p.end, (ns, colon, fe, ve) => {
      const slot = selection.slotAt(text, ns, colon);
      if (slot >= 0) out[slot] = cutValue(text, colon, fe, ve);
    });
  } else {
    for (const [name, value] of p.fields) {
      const slot = selection.slotOf(name);
      if (slot >= 0) out[slot] = value;
    }
  }
  return out;
}

/** A paragraph made in code (for a dpkg `status` entry or a test). Field names must be valid. */
export function makeParagraph(fields: Iterable<readonly [string, string]>): Paragraph {
  const list: Array<readonly [string, string]> = [];
  const seen = new Set<string>();
  for (const [name, value] of fields) {
    assertFieldName(name);
    const key = name.toLowerCase();
    if (seen.has(key)) throw new KilnError("badRequest", `duplicate field "${name}" in a control paragraph`);
    seen.add(key);
    list.push([name, value]);
  }
  return new ControlParagraph(list);
}

const SPACE = 0x20;
const TAB = 0x09;
const HASH = 0x23;
const DASH = 0x2d;

function isBlankLine(text: string, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c !== SPACE && c !== TAB) return false;
  }
  return true;
}

function lineNumberAt(text: string, pos: number): number {
  let n = 1;
  for (let i = text.indexOf("\n"); i !== -1 && i < pos; i = text.indexOf("\n", i + 1)) n++;
  return n;
}

function syntaxError(text: string, pos: number, what: string): never {
  throw new KilnError("badRequest", `control data, line ${lineNumberAt(text, pos)}: ${what}`);
}

function assertFieldName(name: string): void {
  // deb822(5): printable US-ASCII except colon and space, not starting with '#' or '-'.
  if (!/^[!-9;-~]+$/.test(name) || name.charCodeAt(0) === HASH || name.charCodeAt(0) === DASH) {
    throw new KilnError("badRequest", `"${name}" is not a valid control field name`);
  }
}

/**
 * Parses deb822 text into paragraphs. Continuation lines (starting with a space or tab) are
 * joined to their field with `\n`, each without its first whitespace character; the first line
 * of a value is trimmed, so `SHA256:` followed by lines gives a value starting with `\n`.
 * CRLF line ends are accepted; blank or whitespace-only lines separate paragraphs; a field
 * repeated within a paragraph is an error, as in dpkg.
 * @throws KilnError `badRequest` naming the line on a syntax error.
 */
export function parseParagraphs(text: string, options: ParseOptions = {}): Paragraph[] {
  if (text.includes("\r")) text = text.replace(/\r\n/g, "\n");
  // A UTF-8 byte order mark is not part of the first field name.
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const out: Paragraph[] = [];
  const n = text.length;
  // Reused for every paragraph: field names seen so far and their keys.
  const names: string[] = [];
  const keys: number[] = [];
  let count = 0;
  let paragraphStart = -1;
  let pos = 0;
  while (pos < n) {
    let lineEnd = text.indexOf("\n", pos);
    if (lineEnd === -1) lineEnd = n;
    const c = text.charCodeAt(pos);
    if (isBlankLine(text, pos, lineEnd)) {
      if (count > 0) {
        out.push(new TextParagraph(text, paragraphStart, pos));
        count = 0;
      }
      paragraphStart = -1;
      pos = lineEnd + 1;
      continue;
    }
    if (c === SPACE || c === TAB) syntaxError(text, pos, "continuation line outside a field");
    if (c === HASH) {
      if (!options.comments) syntaxError(text, pos, "comment lines are not allowed here");
      pos = lineEnd + 1;
      continue;
    }
    const colon = text.indexOf(":", pos);
    if (colon === -1 || colon > lineEnd) syntaxError(text, pos, `expected "Field: value", got "${text.slice(pos, Math.min(lineEnd, pos + 60))}"`);
    const name = text.slice(pos, colon);
    if (c === DASH || name.includes(" ") || name.includes("\t")) syntaxError(text, pos, `"${name}" is not a valid field name`);
    // Find where the field ends: the next line that does not start with whitespace (or is blank).
    let end = lineEnd;
    while (end + 1 < n) {
      const next = text.charCodeAt(end + 1);
      if (next !== SPACE && next !== TAB) break;
      let nextEnd = text.indexOf("\n", end + 1);
      if (nextEnd === -1) nextEnd = n;
      if (isBlankLine(text, end + 1, nextEnd)) break;
      end = nextEnd;
    }
    // A cheap key (length and first letter) finds the few candidate duplicates; the
    // case-insensitive comparison is only paid on a key collision.
    const key = name.length * 128 + (c | 0x20);
    for (let i = 0; i < count; i++) {
      if (keys[i] === key && names[i]!.toLowerCase() === name.toLowerCase()) {
        syntaxError(text, pos, `field "${name}" appears twice in one paragraph`);
      }
    }
    keys[count] = key;
    names[count] = name;
    count++;
    if (paragraphStart === -1) paragraphStart = pos;
    pos = end + 1;
  }
  if (count > 0) out.push(new TextParagraph(text, paragraphStart, n));
  return out;
}

/**
 * Parses text that must hold exactly one paragraph (a `.deb`'s `control` file, a `Release`).
 * @throws KilnError `badRequest` when there is none or more than one.
 */
export function parseParagraph(text: string, options: ParseOptions = {}): Paragraph {
  const all = parseParagraphs(text, options);
  if (all.length !== 1) throw new KilnError("badRequest", `expected one control paragraph, found ${all.length}`);
  return all[0]!;
}

/**
 * Renders a paragraph as deb822 text ending with a newline (no blank line after it). Empty
 * continuation lines become ` .`, the convention of `Description`, since a blank line would end
 * the paragraph.
 */
export function formatParagraph(p: Paragraph): string {
  let out = "";
  for (const [name, value] of p.fields) {
    assertFieldName(name);
    const lines = value.split("\n");
    out += lines[0] === "" ? `${name}:\n` : `${name}: ${lines[0]}\n`;
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      out += line.trim() === "" ? " .\n" : ` ${line}\n`;
    }
  }
  return out;
}

/**
 * Renders paragraphs each followed by a blank line, as apt-ftparchive writes a `Packages` index
 * and dpkg its `status` file.
 */
export function formatParagraphs(ps: Iterable<Paragraph>): string {
  let out = "";
  for (const p of ps) out += `${formatParagraph(p)}\n`;
  return out;
}
