/**
 * A repository's `Release` file (after its signature was checked): what the suite is, and the
 * SHA256 and size of every index below it — the link between the signature and each download.
 */
import { KilnError } from "../domain/errors.js";
import { parseParagraphs } from "./control.js";
import type { Expected } from "./mirror.js";
import type { Paragraph } from "./types.js";

/** What a Release says about its suite. */
export interface ReleaseInfo {
  /** `Date:` — when the archive was last updated. */
  date: Date | undefined;
  /** `Valid-Until:`, after which the Release must not be trusted (security archives set it). */
  validUntil: Date | undefined;
  suite: string | undefined;
  codename: string | undefined;
  origin: string | undefined;
  label: string | undefined;
  version: string | undefined;
  architectures: string[];
  components: string[];
  /** Fingerprint of the key whose signature verified, or undefined with `keyring: none`. */
  signedBy: string | undefined;
  /** The whole (verified) Release paragraph. */
  paragraph: Paragraph;
}

/** A parsed Release: its description and the hash list, keyed by path (`main/binary-amd64/Packages.xz`). */
export interface ParsedRelease {
  info: Omit<ReleaseInfo, "signedBy">;
  files: Map<string, Expected>;
}

function parseDate(value: string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  // RFC 2822 dates; Debian writes the zone as "UTC", which Date.parse reads like "+0000".
  const ms = Date.parse(value.replace(/\bUTC$/, "+0000"));
  return Number.isNaN(ms) ? undefined : new Date(ms);
}

/**
 * Parses a Release text. Only the `SHA256` list is read: MD5 and SHA1 are broken and never
 * trusted for integrity.
 * @throws KilnError `repositoryFailed` when it is malformed or has no SHA256 list.
 */
export function parseRelease(text: string, what: string): ParsedRelease {
  let paragraphs;
  try {
    paragraphs = parseParagraphs(text);
  } catch (err) {
    throw new KilnError("repositoryFailed", `${what} is malformed: ${(err as Error).message}`, { cause: err });
  }
  if (paragraphs.length !== 1) throw new KilnError("repositoryFailed", `${what} is malformed: expected one paragraph, found ${paragraphs.length}`);
  const p = paragraphs[0]!;
  const sha = p.get("SHA256");
  if (sha === undefined) throw new KilnError("repositoryFailed", `${what} has no SHA256 list (MD5Sum and SHA1 are not trusted)`);
  const files = new Map<string, Expected>();
  for (const line of sha.split("\n")) {
    const t = line.trim();
    if (t === "") continue;
    const m = /^([0-9a-fA-F]{64})\s+([0-9]+)\s+(\S+)$/.exec(t);
    if (!m) throw new KilnError("repositoryFailed", `${what} has a malformed SHA256 line: "${t}"`);
    files.set(m[3]!, { sha256: m[1]!.toLowerCase(), size: Number(m[2]) });
  }
  const words = (v: string | undefined) => (v ?? "").split(/\s+/).filter(Boolean);
  return {
    info: {
      date: parseDate(p.get("Date")),
      validUntil: parseDate(p.get("Valid-Until")),
      suite: p.get("Suite"),
      codename: p.get("Codename"),
      origin: p.get("Origin"),
      label: p.get("Label"),
      version: p.get("Version"),
      architectures: words(p.get("Architectures")),
      components: words(p.get("Components")),
      paragraph: p,
    },
    files,
  };
}
