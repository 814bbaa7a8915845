/**
 * The shapes the Debian side of Kiln shares with the rest of it: control paragraphs, package
 * relations and binary packages as a repository index (or a local `.deb`) describes them.
 */

/**
 * One deb822 paragraph (a stanza of a control file, `Packages` index or `status` file). Field
 * names keep their original spelling and order; lookups are case-insensitive.
 */
export interface Paragraph {
  /** Fields in file order, as written (multi-line values keep their continuation lines, without the leading space). */
  readonly fields: ReadonlyArray<readonly [name: string, value: string]>;
  /** Case-insensitive lookup. */
  get(name: string): string | undefined;
}

export type VersionOp = "<<" | "<=" | "=" | ">=" | ">>";

/** One package in a relationship field: `libc6 (>= 2.36)`, `python3:any`, `foo [amd64]`. */
export interface Relation {
  name: string;
  /** `any`, `native` or an architecture after a colon (`python3:any`). */
  archQualifier?: string;
  op?: VersionOp;
  version?: string;
}

/** A relationship field: AND of OR-groups (`a | b, c` is `[[a, b], [c]]`). */
export type RelationField = Relation[][];

export interface ProvidedPackage {
  name: string;
  /** Only `=` versions may be provided (Debian policy 7.5). */
  version?: string;
}

export type MultiArch = "no" | "same" | "foreign" | "allowed";

/** A binary package as a `Packages` index or a `.deb`'s control file describes it. */
export interface BinaryPackage {
  name: string;
  version: string;
  /** Debian architecture (`amd64`, `all`). */
  architecture: string;
  multiArch: MultiArch;
  essential: boolean;
  priority: string | undefined;
  section: string | undefined;
  /** `Source:` (without a version), defaulting to the package name. */
  source: string;
  installedSizeKiB: number | undefined;
  preDepends: RelationField;
  depends: RelationField;
  /** Recommends are recorded but never installed (like debootstrap and apko). */
  recommends: RelationField;
  provides: ProvidedPackage[];
  conflicts: RelationField;
  breaks: RelationField;
  replaces: RelationField;
  /** Path of the `.deb` relative to the mirror root (index), or undefined for a local file. */
  filename: string | undefined;
  /** Size of the `.deb` in bytes, when known. */
  size: number | undefined;
  /** SHA256 of the `.deb` (hex), from the signed index chain or computed for a local file. */
  sha256: string | undefined;
  /** The whole stanza, for the dpkg `status` file and for `imagePkgs`. */
  paragraph: Paragraph;
}
