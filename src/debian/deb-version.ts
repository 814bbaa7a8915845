/**
 * Debian version ordering (Debian policy 5.6.12), as much of it as the `.deb` reader and the
 * rootfs need to honour `Replaces: foo (<< 1.2)`. It follows dpkg's `verrevcmp`: `~` sorts
 * before everything, even the end of a string; letters sort before other characters; digit runs
 * compare numerically.
 */
import type { VersionOp } from "./types.js";

interface ParsedVersion {
  epoch: number;
  upstream: string;
  revision: string;
}

function parseVersion(v: string): ParsedVersion {
  const s = v.trim();
  const colon = s.indexOf(":");
  let epoch = 0;
  let rest = s;
  if (colon > 0 && /^\d+$/.test(s.slice(0, colon))) {
    epoch = Number(s.slice(0, colon));
    rest = s.slice(colon + 1);
  }
  const dash = rest.lastIndexOf("-");
  return dash >= 0 ? { epoch, upstream: rest.slice(0, dash), revision: rest.slice(dash + 1) } : { epoch, upstream: rest, revision: "" };
}

function order(c: string | undefined): number {
  if (c === undefined) return 0;
  if (c === "~") return -1;
  const code = c.charCodeAt(0);
  if (c >= "0" && c <= "9") return 0;
  if ((c >= "a" && c <= "z") || (c >= "A" && c <= "Z")) return code;
  return code + 256;
}

function compareFragment(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    let firstDiff = 0;
    while ((i < a.length && !isDigit(a[i]!)) || (j < b.length && !isDigit(b[j]!))) {
      const ac = order(i < a.length && !isDigit(a[i]!) ? a[i] : undefined);
      const bc = order(j < b.length && !isDigit(b[j]!) ? b[j] : undefined);
      if (ac !== bc) return ac - bc;
      i++;
      j++;
    }
    while (a[i] === "0") i++;
    while (b[j] === "0") j++;
    while (i < a.length && isDigit(a[i]!) && j < b.length && isDigit(b[j]!)) {
      if (firstDiff === 0) firstDiff = a.charCodeAt(i) - b.charCodeAt(j);
      i++;
      j++;
    }
    if (i < a.length && isDigit(a[i]!)) return 1;
    if (j < b.length && isDigit(b[j]!)) return -1;
    if (firstDiff !== 0) return firstDiff;
  }
  return 0;
}

function isDigit(c: string): boolean {
  return c >= "0" && c <= "9";
}

/** Compares two Debian versions: negative, zero or positive like `Array.prototype.sort` wants. */
export function compareDebVersions(a: string, b: string): number {
  const pa = parseVersion(a);
  const pb = parseVersion(b);
  if (pa.epoch !== pb.epoch) return pa.epoch - pb.epoch;
  const u = compareFragment(pa.upstream, pb.upstream);
  if (u !== 0) return u;
  return compareFragment(pa.revision, pb.revision);
}

/** Whether `version` satisfies `op ref` (`2.36-9 >= 2.36`). Without an operator, any version does. */
export function debVersionSatisfies(version: string, op: VersionOp | undefined, ref: string | undefined): boolean {
  if (op === undefined || ref === undefined) return true;
  const c = compareDebVersions(version, ref);
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
