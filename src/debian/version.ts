/**
 * Debian version numbers (Debian policy 5.6.12): `[epoch:]upstream_version[-debian_revision]`,
 * their validation and their ordering, which follows dpkg's `verrevcmp`: non-digit runs compare
 * character by character with `~` before everything (even the end of the string) and letters
 * before other characters; digit runs compare as numbers.
 */
import { KilnError } from "../domain/errors.js";
import type { VersionOp } from "./types.js";

/** A version split into its three parts. */
export interface DebianVersion {
  epoch: number;
  upstream: string;
  /** Empty when the version has no `-revision` (it then compares equal to `-0`). */
  revision: string;
}

/** dpkg keeps epochs in an `int`. */
const MAX_EPOCH = 2 ** 31 - 1;
const UPSTREAM_RE = /^[0-9][A-Za-z0-9.+~-]*$/;
const REVISION_RE = /^[A-Za-z0-9.+~]+$/;

/** Why `v` is not a valid Debian version, or undefined when it is. */
export function versionError(v: string): string | undefined {
  if (v === "") return "the version is empty";
  if (/\s/.test(v)) return "the version has embedded spaces";
  const colon = v.indexOf(":");
  let rest = v;
  if (colon !== -1) {
    const epoch = v.slice(0, colon);
    if (epoch === "") return "the epoch is empty";
    if (!/^[0-9]+$/.test(epoch)) return "the epoch is not a number";
    if (Number(epoch) > MAX_EPOCH) return "the epoch is too big";
    rest = v.slice(colon + 1);
    if (rest === "") return "nothing follows the epoch's colon";
  }
  const dash = rest.lastIndexOf("-");
  const upstream = dash === -1 ? rest : rest.slice(0, dash);
  if (upstream === "") return "the upstream version is empty";
  if (!/^[0-9]/.test(upstream)) return "the upstream version does not start with a digit";
  if (!UPSTREAM_RE.test(upstream)) return "the upstream version has a character other than letters, digits and . + - ~";
  if (dash !== -1) {
    const revision = rest.slice(dash + 1);
    if (revision === "") return "the revision is empty";
    if (!REVISION_RE.test(revision)) return "the revision has a character other than letters, digits and . + ~";
  }
  return undefined;
}

/** Whether `v` is a valid Debian version (policy 5.6.12). */
export function isValidVersion(v: string): boolean {
  return versionError(v) === undefined;
}

/**
 * Splits and validates a version.
 * @throws KilnError `badRequest` saying what is wrong.
 */
export function parseVersion(v: string): DebianVersion {
  const err = versionError(v);
  if (err !== undefined) throw new KilnError("badRequest", `invalid version "${v}": ${err}`);
  const colon = v.indexOf(":");
  const epoch = colon === -1 ? 0 : Number(v.slice(0, colon));
  const rest = colon === -1 ? v : v.slice(colon + 1);
  const dash = rest.lastIndexOf("-");
  return dash === -1 ? { epoch, upstream: rest, revision: "" } : { epoch, upstream: rest.slice(0, dash), revision: rest.slice(dash + 1) };
}

/** The weight of one character in a non-digit run; `0` stands for the end of the run. */
function order(s: string, i: number): number {
  if (i >= s.length) return 0;
  const c = s.charCodeAt(i);
  if (c >= 0x30 && c <= 0x39) return 0;
  if ((c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)) return c;
  if (c === 0x7e) return -1;
  return c + 256;
}

function isDigitAt(s: string, i: number): boolean {
  if (i >= s.length) return false;
  const c = s.charCodeAt(i);
  return c >= 0x30 && c <= 0x39;
}

/** dpkg's `verrevcmp` on one part (upstream or revision). */
function compareParts(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    while ((i < a.length && !isDigitAt(a, i)) || (j < b.length && !isDigitAt(b, j))) {
      const ac = order(a, i);
      const bc = order(b, j);
      if (ac !== bc) return ac - bc;
      i++;
      j++;
    }
    while (a.charCodeAt(i) === 0x30) i++;
    while (b.charCodeAt(j) === 0x30) j++;
    let firstDiff = 0;
    while (isDigitAt(a, i) && isDigitAt(b, j)) {
      if (firstDiff === 0) firstDiff = a.charCodeAt(i) - b.charCodeAt(j);
      i++;
      j++;
    }
    // The longer digit run (without leading zeros) is the bigger number.
    if (isDigitAt(a, i)) return 1;
    if (isDigitAt(b, j)) return -1;
    if (firstDiff !== 0) return firstDiff;
  }
  return 0;
}

function split(v: string): [epoch: number, upstream: string, revision: string] {
  const colon = v.indexOf(":");
  // A malformed epoch is compared as part of the upstream version rather than thrown on: the
  // ordering is total, and validation is parseVersion's job.
  const hasEpoch = colon > 0 && /^[0-9]+$/.test(v.slice(0, colon));
  const epoch = hasEpoch ? Number(v.slice(0, colon)) : 0;
  const rest = hasEpoch ? v.slice(colon + 1) : v;
  const dash = rest.lastIndexOf("-");
  return dash === -1 ? [epoch, rest, ""] : [epoch, rest.slice(0, dash), rest.slice(dash + 1)];
}

/** Orders two versions as dpkg does: negative when `a < b`, zero when equal, positive when `a > b`. */
export function compareVersions(a: string, b: string): number {
  if (a === b) return 0;
  const [ea, ua, ra] = split(a);
  const [eb, ub, rb] = split(b);
  if (ea !== eb) return ea < eb ? -1 : 1;
  const u = compareParts(ua, ub);
  if (u !== 0) return u < 0 ? -1 : 1;
  const r = compareParts(ra, rb);
  return r < 0 ? -1 : r > 0 ? 1 : 0;
}

/** Whether version `v` satisfies the relation `op target` (`<<` strictly less, `>>` strictly greater). */
export function satisfiesVersion(v: string, op: VersionOp, target: string): boolean {
  const c = compareVersions(v, target);
  switch (op) {
    case "<<":
      return c < 0;
    case "<=":
      return c <= 0;
    case "=":
      return c === 0;
    case ">=":
      return c >= 0;
    case ">>":
      return c > 0;
  }
}
