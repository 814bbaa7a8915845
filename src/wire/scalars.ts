/**
 * Text and JSON forms of the XSD built-in types a UForge field may have. One place decides what
 * is a valid long, boolean or dateTime, so the XML and JSON codecs accept and refuse exactly the
 * same values.
 */
import type { FieldModel } from "./model.js";

/** A value that does not fit its field; the codec adds the field's path and picks the error kind. */
export class WireValueError extends Error {
  /** Path segments, innermost last, filled in as the error travels up through the objects. */
  readonly path: string[] = [];
  override name = "WireValueError";
}

const INT_MIN = -2147483648;
const INT_MAX = 2147483647;

/** Characters XML 1.0 cannot carry at all, not even as character references. */
const XML_ILLEGAL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const XML_ILLEGAL_ALL = new RegExp(XML_ILLEGAL.source, "g");
const NEEDS_ESCAPE = /[&<>\r]/;
const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;" };

/**
 * Escapes text content. `\r` becomes a character reference because parsers normalise a raw CR
 * to LF; characters XML cannot represent become U+FFFD rather than an invalid document (decoding
 * refuses them, so they only reach here from code, never from a client).
 */
export function escapeText(s: string): string {
  if (XML_ILLEGAL.test(s)) s = s.replace(XML_ILLEGAL_ALL, "\uFFFD");
  if (!NEEDS_ESCAPE.test(s)) return s;
  return s.replace(/[&<>\r]/g, (c) => ESCAPES[c]!);
}

/** How a field's expected value reads in an error message. */
export function describeKind(field: FieldModel): string {
  switch (field.kind) {
    case "string":
      return "a string";
    case "anyURI":
      return "a URI string";
    case "long":
      return "a long";
    case "int":
      return "an int";
    case "integer":
      return "an integer";
    case "float":
      return "a float";
    case "boolean":
      return "a boolean";
    case "dateTime":
      return "a dateTime";
    case "base64Binary":
      return "base64 data";
    case "enum":
      return `one of ${[...field.values!].join(", ")}`;
    case "object":
      return `a ${field.type} object`;
    case "list":
      return "a list";
  }
}

/** A client's value, quoted and cut short, for an error message. */
export function quote(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return "an object";
  const s = typeof value === "string" ? JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}…` : value) : String(value);
  return s;
}

function invalid(field: FieldModel, value: unknown): never {
  throw new WireValueError(`${quote(value)} is not ${describeKind(field)}`);
}

// XML Schema's whitespace rule for every type but string: collapse, i.e. trim for these lexical forms.
const XML_SPACE = /^[ \t\r\n]+|[ \t\r\n]+$/g;

const INTEGER = /^[+-]?[0-9]+$/;
const FLOAT = /^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$/;
const DATE_TIME = /^(-?[0-9]{4,})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})?$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function parseInteger(field: FieldModel, text: string, original: unknown): number {
  if (!INTEGER.test(text)) invalid(field, original);
  const n = Number(text);
  // Beyond 2^53 a number silently loses digits; refusing is more honest than a wrong id.
  if (!Number.isSafeInteger(n)) invalid(field, original);
  if (field.kind === "int" && (n < INT_MIN || n > INT_MAX)) invalid(field, original);
  return Object.is(n, -0) ? 0 : n;
}

function parseFloatText(field: FieldModel, text: string, original: unknown): number {
  if (text === "INF" || text === "+INF") return Infinity;
  if (text === "-INF") return -Infinity;
  if (text === "NaN") return NaN;
  if (!FLOAT.test(text)) invalid(field, original);
  return Number(text);
}

/** Days per month in a leap year; February 29th of other years is checked apart. */
const DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * Parses an xs:dateTime. A value without a zone is taken as UTC (the server's only zone), so the
 * same text always means the same instant whatever the host's TZ.
 */
export function parseDateTime(text: string): Date | undefined {
  const m = DATE_TIME.exec(text);
  if (m === null) return undefined;
  const [, y, mo, d, h, mi, s, frac, zone] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(s);
  if (month < 1 || month > 12 || day < 1 || day > DAYS_IN_MONTH[month - 1]!) return undefined;
  if (month === 2 && day === 29 && !(year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0))) return undefined;
  const endOfDay = hour === 24 && minute === 0 && second === 0 && (frac === undefined || Number(frac) === 0);
  if ((hour > 23 && !endOfDay) || minute > 59 || second > 59) return undefined;
  const ms = frac === undefined ? 0 : Math.floor(Number(`0${frac}`) * 1000);
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, ms);
  let time = date.getTime();
  if (zone !== undefined && zone !== "Z") {
    const sign = zone[0] === "-" ? -1 : 1;
    const zh = Number(zone.slice(1, 3));
    const zm = Number(zone.slice(4, 6));
    if (zh > 14 || zm > 59) return undefined;
    time -= sign * (zh * 60 + zm) * 60_000;
  }
  return Number.isNaN(time) ? undefined : new Date(time);
}

function checkXmlChars(field: FieldModel, s: string): string {
  const bad = XML_ILLEGAL.exec(s);
  if (bad !== null) {
    throw new WireValueError(`contains U+${bad[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}, a character XML cannot carry`);
  }
  return s;
}

/** The in-memory value of an XML element's text. */
export function parseXmlScalar(field: FieldModel, text: string): unknown {
  switch (field.kind) {
    case "string":
      return text;
    case "anyURI":
      return text.replace(XML_SPACE, "");
    case "enum": {
      // Enumerations restrict xs:string (whitespace preserved), but a client's stray newline
      // around a value is not worth a 400.
      const value = text.replace(XML_SPACE, "");
      if (!field.values!.has(value)) invalid(field, text);
      return value;
    }
    case "long":
    case "int":
    case "integer":
      return parseInteger(field, text.replace(XML_SPACE, ""), text);
    case "float":
      return parseFloatText(field, text.replace(XML_SPACE, ""), text);
    case "boolean": {
      const value = text.replace(XML_SPACE, "");
      if (value === "true" || value === "1") return true;
      if (value === "false" || value === "0") return false;
      return invalid(field, text);
    }
    case "dateTime":
      return parseDateTime(text.replace(XML_SPACE, "")) ?? invalid(field, text);
    case "base64Binary": {
      const value = text.replace(/[ \t\r\n]+/g, "");
      if (!BASE64.test(value)) invalid(field, text.length > 64 ? `${text.slice(0, 64)}…` : text);
      return Buffer.from(value, "base64");
    }
    default:
      throw new Error(`not a scalar field: ${field.name}`);
  }
}

/** The in-memory value of a JSON scalar, checked exactly as the XML text would be. */
export function readJsonScalar(field: FieldModel, value: unknown): unknown {
  switch (field.kind) {
    case "string":
    case "anyURI":
      if (typeof value !== "string") invalid(field, value);
      return checkXmlChars(field, value);
    case "enum":
      if (typeof value !== "string" || !field.jsonValues!.has(value)) invalid(field, value);
      return value;
    case "long":
    case "int":
    case "integer":
      if (typeof value !== "number" || !Number.isSafeInteger(value)) invalid(field, value);
      if (field.kind === "int" && (value < INT_MIN || value > INT_MAX)) invalid(field, value);
      return Object.is(value, -0) ? 0 : value;
    case "float":
      if (typeof value === "number") return value;
      // JSON has no Infinity/NaN; xs:float's own spellings stand in for them.
      if (value === "INF" || value === "-INF" || value === "NaN") return parseFloatText(field, value, value);
      return invalid(field, value);
    case "boolean":
      if (typeof value !== "boolean") invalid(field, value);
      return value;
    case "dateTime":
      if (typeof value !== "string") invalid(field, value);
      return parseDateTime(value) ?? invalid(field, value);
    case "base64Binary":
      if (typeof value !== "string" || !BASE64.test(value)) invalid(field, value);
      return Buffer.from(value, "base64");
    default:
      throw new Error(`not a scalar field: ${field.name}`);
  }
}

function wrongValue(field: FieldModel, value: unknown): never {
  const what = value instanceof Date ? "a Date" : typeof value === "object" ? quote(value) : `${typeof value} ${quote(value)}`;
  throw new WireValueError(`cannot encode ${what} as ${describeKind(field)}`);
}

function floatText(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "INF";
  if (value === -Infinity) return "-INF";
  return String(value);
}

function dateText(field: FieldModel, value: unknown): string {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) wrongValue(field, value);
  return value.toISOString();
}

/** The XML text (already escaped) of an in-memory scalar. */
export function xmlScalar(field: FieldModel, value: unknown): string {
  switch (field.kind) {
    case "string":
    case "anyURI":
      if (typeof value !== "string") wrongValue(field, value);
      return escapeText(value);
    case "enum":
      if (typeof value !== "string" || !field.values!.has(value)) wrongValue(field, value);
      return value; // enumeration values are plain names: nothing to escape
    case "long":
    case "integer":
      if (!Number.isSafeInteger(value)) wrongValue(field, value);
      return String(value);
    case "int":
      if (!Number.isSafeInteger(value) || (value as number) < INT_MIN || (value as number) > INT_MAX) wrongValue(field, value);
      return String(value);
    case "float":
      if (typeof value !== "number") wrongValue(field, value);
      return floatText(value);
    case "boolean":
      if (typeof value !== "boolean") wrongValue(field, value);
      return value ? "true" : "false";
    case "dateTime":
      return dateText(field, value);
    case "base64Binary":
      if (!(value instanceof Uint8Array)) wrongValue(field, value);
      return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("base64");
    default:
      throw new Error(`not a scalar field: ${field.name}`);
  }
}

/** The JSON text of an in-memory scalar. */
export function jsonScalar(field: FieldModel, value: unknown): string {
  switch (field.kind) {
    case "string":
    case "anyURI":
      if (typeof value !== "string") wrongValue(field, value);
      return JSON.stringify(value);
    case "enum":
      if (typeof value !== "string" || !field.jsonValues!.has(value)) wrongValue(field, value);
      return JSON.stringify(value);
    case "long":
    case "integer":
      if (!Number.isSafeInteger(value)) wrongValue(field, value);
      return String(value);
    case "int":
      if (!Number.isSafeInteger(value) || (value as number) < INT_MIN || (value as number) > INT_MAX) wrongValue(field, value);
      return String(value);
    case "float":
      if (typeof value !== "number") wrongValue(field, value);
      return Number.isFinite(value) ? String(value) : JSON.stringify(floatText(value));
    case "boolean":
      if (typeof value !== "boolean") wrongValue(field, value);
      return value ? "true" : "false";
    case "dateTime":
      return JSON.stringify(dateText(field, value));
    case "base64Binary":
      if (!(value instanceof Uint8Array)) wrongValue(field, value);
      return JSON.stringify(Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("base64"));
    default:
      throw new Error(`not a scalar field: ${field.name}`);
  }
}
