/**
 * Package relationship fields (Debian policy 7.1): `Depends`, `Pre-Depends`, `Conflicts`,
 * `Provides`... An AND of OR-groups of `name[:arch] [(op version)] [[arch list]] [<profiles>]`.
 * Architecture restrictions and build profiles only occur in source packages' fields; they are
 * evaluated for a target architecture and profile set, and a relation they exclude is dropped.
 */
import { KilnError } from "../domain/errors.js";
import type { ProvidedPackage, Relation, RelationField, VersionOp } from "./types.js";

/** Options of {@link parseRelationField}. */
export interface RelationOptions {
  /**
   * Debian architecture the relations are evaluated for (`amd64`). Without it, architecture
   * restrictions are not evaluated and every relation is kept.
   */
  arch?: string;
  /** Active build profiles (`nocheck`, `stage1`...); none by default. */
  profiles?: readonly string[];
}

const ITEM_RE =
  /^([A-Za-z0-9][A-Za-z0-9+.-]*)(?::([A-Za-z0-9][A-Za-z0-9-]*))?\s*(?:\(\s*(<<|<=|>=|>>|=|<|>)\s*([^\s()<>=][^\s()]*)\s*\))?\s*(?:\[([^\]]*)\])?\s*((?:<[^<>]*>\s*)*)$/;

function relationError(item: string, why: string): never {
  throw new KilnError("badRequest", `invalid relation "${item.trim().replace(/\s+/g, " ")}": ${why}`);
}

/**
 * dpkg's tuple of a Debian architecture name: ABI, libc, OS, CPU (`amd64` is
 * base-gnu-linux-amd64, `armhf` eabihf-gnu-linux-arm, `hurd-i386` base-gnu-hurd-i386).
 */
function archTuple(arch: string): [abi: string, libc: string, os: string, cpu: string] {
  if (arch === "armhf") return ["eabihf", "gnu", "linux", "arm"];
  if (arch === "armel") return ["eabi", "gnu", "linux", "arm"];
  const dash = arch.indexOf("-");
  if (dash === -1) return ["base", "gnu", "linux", arch];
  return ["base", "gnu", arch.slice(0, dash), arch.slice(dash + 1)];
}

/**
 * Whether a Debian architecture matches an architecture name or wildcard (`any`, `linux-any`,
 * `any-amd64`, `gnu-linux-any`), as `dpkg-architecture -a ARCH -i PATTERN` decides.
 */
export function archMatches(arch: string, pattern: string): boolean {
  if (pattern === "any" || pattern === arch) return true;
  if (pattern === "all" || arch === "all") return false;
  const real = archTuple(arch);
  const parts = pattern.split("-");
  if (!parts.includes("any")) {
    // A plain name in another spelling (`linux-amd64` is amd64).
    return archTuple(pattern).every((p, i) => p === real[i]);
  }
  if (parts.length > 4) return false;
  const wild = [...Array<string>(4 - parts.length).fill("any"), ...parts];
  return wild.every((p, i) => p === "any" || p === real[i]);
}

function archListAllows(item: string, list: string, arch: string): boolean {
  const terms = list.trim().split(/\s+/).filter(Boolean);
  if (terms.length === 0) relationError(item, "empty architecture list");
  const negated = terms.filter((t) => t.startsWith("!"));
  if (negated.length !== 0 && negated.length !== terms.length) relationError(item, "architecture list mixes negated and plain names");
  if (negated.length > 0) return !negated.some((t) => archMatches(arch, t.slice(1)));
  return terms.some((t) => archMatches(arch, t));
}

function profilesAllow(item: string, formula: string, active: readonly string[]): boolean {
  const groups = formula.match(/<[^<>]*>/g) ?? [];
  // `<a b> <c>`: any group whose terms are all true keeps the relation.
  return groups.some((g) => {
    const terms = g.slice(1, -1).trim().split(/\s+/).filter(Boolean);
    if (terms.length === 0) relationError(item, "empty build profile list");
    return terms.every((t) => (t.startsWith("!") ? !active.includes(t.slice(1)) : active.includes(t)));
  });
}

/** Parses one relation item (no `,` or `|`); undefined when a restriction excludes it. */
function parseItem(item: string, options: RelationOptions): Relation | undefined {
  const m = ITEM_RE.exec(item.trim());
  if (!m) relationError(item, "expected name[:arch] [(op version)] [[archs]] [<profiles>]");
  const [, name, qualifier, rawOp, version, archList, profiles] = m;
  if (archList !== undefined && options.arch !== undefined && !archListAllows(item, archList, options.arch)) return undefined;
  if (profiles && !profilesAllow(item, profiles, options.profiles ?? [])) return undefined;
  const rel: Relation = { name: name!.toLowerCase() };
  if (qualifier !== undefined) rel.archQualifier = qualifier.toLowerCase();
  if (rawOp !== undefined) {
    // The obsolete `<` and `>` meant `<=` and `>=` (policy 7.1); dpkg still reads them so.
    rel.op = (rawOp === "<" ? "<=" : rawOp === ">" ? ">=" : rawOp) as VersionOp;
    rel.version = version!;
  }
  return rel;
}

/**
 * Parses a relationship field into OR-groups. Relations excluded by an architecture list or a
 * build profile formula are dropped, and so is a group left empty. An empty or missing field is
 * `[]`.
 * @throws KilnError `badRequest` naming the malformed item.
 */
export function parseRelationField(text: string | undefined, options: RelationOptions = {}): RelationField {
  if (text === undefined) return [];
  const out: RelationField = [];
  for (const group of text.split(",")) {
    if (group.trim() === "") {
      // A trailing comma (or an empty field) is tolerated, as apt and dpkg do for Packages files.
      continue;
    }
    const alts: Relation[] = [];
    for (const item of group.split("|")) {
      if (item.trim() === "") relationError(group, "empty alternative");
      const rel = parseItem(item, options);
      if (rel) alts.push(rel);
    }
    if (alts.length > 0) out.push(alts);
  }
  return out;
}

/**
 * Parses a `Provides` field: a list of names, each with at most an `= version` (policy 7.5).
 * @throws KilnError `badRequest` on alternatives or another operator.
 */
export function parseProvides(text: string | undefined, options: RelationOptions = {}): ProvidedPackage[] {
  const out: ProvidedPackage[] = [];
  for (const group of parseRelationField(text, options)) {
    if (group.length !== 1) relationError(text ?? "", "Provides cannot have alternatives");
    const rel = group[0]!;
    if (rel.op !== undefined && rel.op !== "=") relationError(formatRelation(rel), "only exact (=) versions can be provided");
    out.push(rel.version === undefined ? { name: rel.name } : { name: rel.name, version: rel.version });
  }
  return out;
}

/** `libc6 (>= 2.36)`, `python3:any`. */
export function formatRelation(r: Relation): string {
  let s = r.archQualifier ? `${r.name}:${r.archQualifier}` : r.name;
  if (r.op !== undefined && r.version !== undefined) s += ` (${r.op} ${r.version})`;
  return s;
}

/** `a | b`: one OR-group. */
export function formatRelationGroup(group: readonly Relation[]): string {
  return group.map(formatRelation).join(" | ");
}

/** `a | b, c (>= 1)`: a whole field. */
export function formatRelationField(field: RelationField): string {
  return field.map(formatRelationGroup).join(", ");
}
