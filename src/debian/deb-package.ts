/**
 * A {@link BinaryPackage} from a `.deb`'s own control paragraph: what the builder needs for a
 * local package from a bundle (no repository index describes it), and what the rootfs needs to
 * honour `Replaces`.
 */
import type { BinaryPackage, MultiArch, Paragraph, ProvidedPackage, Relation, RelationField, VersionOp } from "./types.js";

const RELATION_RE = /^([a-z0-9][a-z0-9+.-]*)(?::([a-z0-9-]+))?\s*(?:\(\s*(<<|<=|=|>=|>>|<|>)\s*([^)\s]+)\s*\))?\s*(?:\[[^\]]*\])?\s*(?:<[^>]*>\s*)*$/i;

/**
 * Parses a relationship field (`libc6 (>= 2.36), debconf | debconf-2.0`). Architecture
 * restrictions (`[amd64]`) and build profiles (`<!nocheck>`) are accepted and dropped: binary
 * package fields do not carry them. The obsolete `<` and `>` mean `<=` and `>=` (dpkg's reading).
 * Throws an `Error` naming the bad item.
 */
export function parseRelationField(value: string | undefined): RelationField {
  if (value === undefined || value.trim() === "") return [];
  return value
    .split(",")
    .map((g) => g.trim())
    .filter((g) => g !== "")
    .map((group) =>
      group.split("|").map((alt): Relation => {
        const m = RELATION_RE.exec(alt.trim().replace(/\s+/g, " "));
        if (!m) throw new Error(`invalid relation "${alt.trim()}"`);
        const rawOp = m[3];
        const op = (rawOp === "<" ? "<=" : rawOp === ">" ? ">=" : rawOp) as VersionOp | undefined;
        const rel: Relation = { name: m[1]!.toLowerCase() };
        if (m[2] !== undefined) rel.archQualifier = m[2];
        if (op !== undefined) {
          rel.op = op;
          rel.version = m[4]!;
        }
        return rel;
      }),
    );
}

function parseProvides(value: string | undefined): ProvidedPackage[] {
  return parseRelationField(value).flatMap((group) =>
    group.map((r) => (r.version !== undefined && r.op === "=" ? { name: r.name, version: r.version } : { name: r.name })),
  );
}

function parseMultiArch(value: string | undefined): MultiArch {
  const v = (value ?? "no").trim().toLowerCase();
  return v === "same" || v === "foreign" || v === "allowed" ? v : "no";
}

/**
 * Describes a package by its control paragraph. `Package`, `Version` and `Architecture` are
 * required; a missing one throws an `Error` (the caller names the file).
 */
export function binaryPackageFromControl(
  paragraph: Paragraph,
  extra: { filename?: string; size?: number; sha256?: string } = {},
): BinaryPackage {
  const required = (name: string): string => {
    const v = paragraph.get(name)?.trim();
    if (!v) throw new Error(`control file has no ${name} field`);
    return v;
  };
  const name = required("Package");
  const source = paragraph.get("Source")?.trim().split(/\s+/)[0];
  const installed = paragraph.get("Installed-Size")?.trim();
  return {
    name,
    version: required("Version"),
    architecture: required("Architecture"),
    multiArch: parseMultiArch(paragraph.get("Multi-Arch")),
    essential: (paragraph.get("Essential") ?? "").trim().toLowerCase() === "yes",
    priority: paragraph.get("Priority")?.trim(),
    section: paragraph.get("Section")?.trim(),
    source: source || name,
    installedSizeKiB: installed && /^\d+$/.test(installed) ? Number(installed) : undefined,
    preDepends: parseRelationField(paragraph.get("Pre-Depends")),
    depends: parseRelationField(paragraph.get("Depends")),
    recommends: parseRelationField(paragraph.get("Recommends")),
    provides: parseProvides(paragraph.get("Provides")),
    conflicts: parseRelationField(paragraph.get("Conflicts")),
    breaks: parseRelationField(paragraph.get("Breaks")),
    replaces: parseRelationField(paragraph.get("Replaces")),
    filename: extra.filename,
    size: extra.size,
    sha256: extra.sha256,
    paragraph,
  };
}
