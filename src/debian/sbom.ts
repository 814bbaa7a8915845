/**
 * An SPDX 2.3 document (JSON) of an image's packages, as apko gives one: a package for the image,
 * one per Debian package (name, version, architecture, source package, supplier, the purl
 * `pkg:deb/debian/<name>@<version>?arch=<arch>&distro=debian-<release>`, and the licences its
 * copyright file declares when that file is machine-readable, DEP-5), and the relationships
 * `DESCRIBES` and `CONTAINS`. Deterministic: the same image gives the same bytes.
 *
 * Licences: the `License:` short names of a DEP-5 file's `Files` paragraphs, mapped to SPDX
 * identifiers (`GPL-2+` → `GPL-2.0-or-later`, `Expat` → `MIT`, ...); a name SPDX does not list
 * becomes `LicenseRef-<name>`, declared in `hasExtractedLicensingInfos` with the text the file
 * gives for it. A package without a machine-readable copyright file is `NOASSERTION`.
 */
import type { BinaryPackage } from "./types.js";

/** Debian short names (DEP-5 §7.1) and their SPDX identifiers. */
const SPDX_IDS: Record<string, string> = {
  "Apache-1.0": "Apache-1.0",
  "Apache-1.1": "Apache-1.1",
  "Apache-2.0": "Apache-2.0",
  "Artistic-1.0": "Artistic-1.0",
  Artistic: "Artistic-1.0-Perl",
  "Artistic-2.0": "Artistic-2.0",
  "BSD-2-clause": "BSD-2-Clause",
  "BSD-3-clause": "BSD-3-Clause",
  "BSD-4-clause": "BSD-4-Clause",
  "BSL-1.0": "BSL-1.0",
  "CC0-1.0": "CC0-1.0",
  "CC-BY-3.0": "CC-BY-3.0",
  "CC-BY-4.0": "CC-BY-4.0",
  "CC-BY-SA-3.0": "CC-BY-SA-3.0",
  "CC-BY-SA-4.0": "CC-BY-SA-4.0",
  "CDDL-1.0": "CDDL-1.0",
  "CPL-1.0": "CPL-1.0",
  "EPL-1.0": "EPL-1.0",
  "EPL-2.0": "EPL-2.0",
  Expat: "MIT",
  MIT: "MIT",
  ISC: "ISC",
  Zlib: "Zlib",
  zlib: "Zlib",
  "MPL-1.1": "MPL-1.1",
  "MPL-2.0": "MPL-2.0",
  "OpenSSL": "OpenSSL",
  "PSF-2": "PSF-2.0",
  "Python-2.0": "Python-2.0",
  "Unicode-DFS-2016": "Unicode-DFS-2016",
  "X11": "X11",
  "FTL": "FTL",
  "OFL-1.1": "OFL-1.1",
  "WTFPL": "WTFPL",
  "Unlicense": "Unlicense",
  "curl": "curl",
  "bzip2-1.0.6": "bzip2-1.0.6",
  "Sleepycat": "Sleepycat",
  "TCL": "TCL",
  "Ruby": "Ruby",
  "PHP-3.01": "PHP-3.01",
  "OLDAP-2.8": "OLDAP-2.8",
};

/** `GPL-2+` → `GPL-2.0-or-later`, `LGPL-2.1` → `LGPL-2.1-only`, `GFDL-1.3+` → `GFDL-1.3-or-later`. */
function gnuId(name: string): string | undefined {
  const m = /^(A?GPL|LGPL|GFDL(?:-NIV)?)-([0-9](?:\.[0-9])?)(\+)?$/.exec(name);
  if (!m) return undefined;
  const family = m[1] === "GFDL-NIV" ? "GFDL" : m[1]!;
  const version = m[2]!.includes(".") ? m[2]! : `${m[2]}.0`;
  return `${family}-${version}-${m[3] ? "or-later" : "only"}`;
}

const refId = (name: string): string => `LicenseRef-${name.replace(/[^A-Za-z0-9.-]+/g, "-").replace(/^-+|-+$/g, "") || "unknown"}`;

/** One DEP-5 licence name as an SPDX identifier (a `LicenseRef-` for the others). */
export function spdxLicenseId(name: string): { id: string; known: boolean } {
  const n = name.trim();
  const id = SPDX_IDS[n] ?? gnuId(n);
  return id ? { id, known: true } : { id: refId(n), known: false };
}

/** A DEP-5 licence field's first line (`GPL-2+ or Artistic`) as an SPDX expression. */
export function spdxExpression(field: string, refs: Map<string, string>): string {
  const orParts = field.split(/\s+or\s+|\s*\|\s*/i).map((alt) =>
    alt
      .split(/\s+and\s+|,\s+and\s+/i)
      .map((name) => {
        const clean = name.replace(/,$/, "").trim();
        const { id, known } = spdxLicenseId(clean);
        if (!known) refs.set(id, refs.get(id) ?? clean);
        return id;
      })
      .join(" AND "),
  );
  return orParts.length > 1 ? orParts.map((p) => (p.includes(" AND ") ? `(${p})` : p)).join(" OR ") : orParts[0]!;
}

/** The licences a machine-readable copyright file declares, as one SPDX expression, or undefined. */
export function copyrightLicenses(text: string): { expression: string; extracted: Map<string, string> } | undefined {
  if (!/^Format:\s*https?:\/\/(www\.)?debian\.org\/doc\/packaging-manuals\/copyright-format\/1\.0\/?\s*$/m.test(text)) return undefined;
  const paragraphs = text.split(/\n[ \t]*\n/);
  const refs = new Map<string, string>();
  const texts = new Map<string, string>();
  const exprs: string[] = [];
  for (const p of paragraphs) {
    const license = /^License:[ \t]*([^\n]*)((?:\n[ \t].*)*)/m.exec(p);
    if (!license) continue;
    const name = license[1]!.trim();
    const body = license[2]!.replace(/^\n/, "").split("\n").map((l) => l.replace(/^[ \t]/, "").replace(/^\.$/, "")).join("\n").trim();
    if (/^Files:/m.test(p)) {
      if (name !== "") exprs.push(spdxExpression(name, refs));
    } else if (name !== "" && body !== "") texts.set(name, body);
  }
  if (exprs.length === 0) return undefined;
  const unique = [...new Set(exprs)];
  const expression = unique.length === 1 ? unique[0]! : unique.map((e) => (/ (OR|AND) /.test(e) ? `(${e})` : e)).join(" AND ");
  const extracted = new Map<string, string>();
  for (const [id, name] of refs) extracted.set(id, texts.get(name) ?? `The licence "${name}" of the package's copyright file.`);
  return { expression, extracted };
}

export interface SbomPackage {
  pkg: BinaryPackage;
  /** The package's `/usr/share/doc/<name>/copyright`, when the image has it. */
  copyright?: string;
}

export interface SbomInput {
  /** The image's name (`name:tag`, or its digest). */
  name: string;
  /** The image's manifest digest. */
  digest: string;
  created: Date;
  /** The Debian release number (`12`). */
  release: string;
  packages: readonly SbomPackage[];
  /** `Tool: kiln-<version>`. */
  tool: string;
}

/** purl version and qualifiers are percent-encoded (`+` → `%2B`, `:` → `%3A`). */
function purl(p: BinaryPackage, release: string): string {
  return `pkg:deb/debian/${encodeURIComponent(p.name)}@${encodeURIComponent(p.version)}?arch=${encodeURIComponent(p.architecture)}&distro=debian-${encodeURIComponent(release)}`;
}

/** An SPDXID from free text: letters, digits, `.` and `-` only, made unique by a hash when needed. */
function spdxId(prefix: string, text: string): string {
  return `SPDXRef-${prefix}-${text.replace(/[^A-Za-z0-9.-]+/g, "-")}`;
}

export function spdxDocument(input: SbomInput): Record<string, unknown> {
  const created = `${input.created.toISOString().slice(0, 19)}Z`;
  const extracted = new Map<string, string>();
  const imageId = "SPDXRef-Image";
  const packages: Array<Record<string, unknown>> = [
    {
      SPDXID: imageId,
      name: input.name,
      versionInfo: input.digest,
      downloadLocation: "NOASSERTION",
      filesAnalyzed: false,
      licenseConcluded: "NOASSERTION",
      licenseDeclared: "NOASSERTION",
      copyrightText: "NOASSERTION",
      primaryPackagePurpose: "CONTAINER",
      checksums: [{ algorithm: "SHA256", checksumValue: input.digest.replace(/^sha256:/, "") }],
    },
  ];
  const relationships: Array<Record<string, unknown>> = [{ spdxElementId: "SPDXRef-DOCUMENT", relationshipType: "DESCRIBES", relatedSpdxElement: imageId }];
  const seen = new Set<string>();
  for (const { pkg, copyright } of [...input.packages].sort((a, b) => (a.pkg.name < b.pkg.name ? -1 : a.pkg.name > b.pkg.name ? 1 : 0))) {
    let id = spdxId("Package-deb", `${pkg.name}-${pkg.version}-${pkg.architecture}`);
    for (let k = 2; seen.has(id); k++) id = `${spdxId("Package-deb", `${pkg.name}-${pkg.version}-${pkg.architecture}`)}-${k}`;
    seen.add(id);
    const licenses = copyright ? copyrightLicenses(copyright) : undefined;
    for (const [ref, text] of licenses?.extracted ?? []) if (!extracted.has(ref)) extracted.set(ref, text);
    const maintainer = /^\s*([^<]*?)\s*(?:<([^>]*)>)?\s*$/.exec((pkg.paragraph.get("Maintainer") ?? "").replace(/\s+/g, " "));
    const sourceVersion = /\(([^)]+)\)/.exec(pkg.paragraph.get("Source") ?? "")?.[1] ?? pkg.version;
    packages.push({
      SPDXID: id,
      name: pkg.name,
      versionInfo: pkg.version,
      ...(maintainer?.[1] ? { supplier: `Organization: ${maintainer[1]}${maintainer[2] ? ` (${maintainer[2]})` : ""}` } : {}),
      originator: "Organization: Debian",
      downloadLocation: "NOASSERTION",
      filesAnalyzed: false,
      sourceInfo: `built from the Debian source package ${pkg.source} ${sourceVersion}`,
      licenseConcluded: "NOASSERTION",
      licenseDeclared: licenses?.expression ?? "NOASSERTION",
      copyrightText: "NOASSERTION",
      ...(pkg.sha256 ? { checksums: [{ algorithm: "SHA256", checksumValue: pkg.sha256 }] } : {}),
      externalRefs: [{ referenceCategory: "PACKAGE-MANAGER", referenceType: "purl", referenceLocator: purl(pkg, input.release) }],
      ...(pkg.paragraph.get("Homepage") ? { homepage: pkg.paragraph.get("Homepage") } : {}),
    });
    relationships.push({ spdxElementId: imageId, relationshipType: "CONTAINS", relatedSpdxElement: id });
  }
  return {
    spdxVersion: "SPDX-2.3",
    dataLicense: "CC0-1.0",
    SPDXID: "SPDXRef-DOCUMENT",
    name: input.name,
    documentNamespace: `https://kiln.invalid/spdx/${input.digest.replace(":", "-")}`,
    creationInfo: { created, creators: [input.tool] },
    packages,
    relationships,
    ...(extracted.size > 0
      ? { hasExtractedLicensingInfos: [...extracted].sort(([a], [b]) => (a < b ? -1 : 1)).map(([licenseId, extractedText]) => ({ licenseId, extractedText })) }
      : {}),
  };
}
