/**
 * {@link BinaryPackage} from a control paragraph: a stanza of a repository's `Packages` index,
 * or the `control` file of a `.deb`.
 */
import { KilnError } from "../domain/errors.js";
import { FieldSelection, readFields } from "./control.js";
import { parseProvides, parseRelationField } from "./relations.js";
import type { BinaryPackage, MultiArch, Paragraph, ProvidedPackage, RelationField } from "./types.js";
import { versionError } from "./version.js";

const FIELDS = [
  "Package",
  "Version",
  "Architecture",
  "Multi-Arch",
  "Essential",
  "Priority",
  "Section",
  "Source",
  "Installed-Size",
  "Pre-Depends",
  "Depends",
  "Recommends",
  "Provides",
  "Conflicts",
  "Breaks",
  "Replaces",
  "Filename",
  "Size",
  "SHA256",
] as const;
const SELECTION = new FieldSelection(FIELDS);

/**
 * Policy 5.6.1: lower case letters, digits, `+ - .`, starting alphanumeric. Policy also asks for
 * two characters at least; dpkg does not enforce that, and neither do we.
 */
const NAME_RE = /^[a-z0-9][a-z0-9+.-]*$/;
const ARCH_RE = /^[a-z0-9][a-z0-9-]*$/;
const SHA256_RE = /^[0-9a-fA-F]{64}$/;

/** Whether `name` is a valid binary package name (policy 5.6.1). */
export function isValidPackageName(name: string): boolean {
  return NAME_RE.test(name);
}

/**
 * Why a `Filename:` from an index must not be used, or undefined when it is a safe relative path
 * below the mirror root: no `..` or `.` segment, not absolute, no backslash or control character.
 */
export function unsafeFilenameReason(filename: string): string | undefined {
  if (filename === "") return "it is empty";
  if (filename.startsWith("/")) return "it is an absolute path";
  if (/[\\\x00-\x1f\x7f]/.test(filename)) return "it contains a backslash or a control character";
  if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(filename)) return "it is a URL, not a path";
  const segments = filename.split("/");
  if (segments.some((s) => s === "..")) return "it climbs out of the mirror with ..";
  if (segments.some((s) => s === "" || s === ".")) return "it has an empty or . segment";
  return undefined;
}

function packageError(p: Paragraph | string, why: string): never {
  const name = typeof p === "string" ? p : p.get("Package");
  throw new KilnError("badRequest", name ? `package ${name}: ${why}` : why);
}

function parseCount(value: string | undefined, name: string, what: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[0-9]+$/.test(value)) packageError(name, `${what} "${value}" is not a whole number`);
  return Number(value);
}

function parseMultiArch(value: string | undefined, name: string): MultiArch {
  if (value === undefined) return "no";
  const v = value.toLowerCase();
  if (v === "no" || v === "same" || v === "foreign" || v === "allowed") return v;
  return packageError(name, `unknown Multi-Arch value "${value}"`);
}

function parseEssential(value: string | undefined, name: string): boolean {
  if (value === undefined) return false;
  const v = value.toLowerCase();
  if (v === "yes") return true;
  if (v === "no") return false;
  return packageError(name, `Essential must be yes or no, not "${value}"`);
}

const RELATION_FIELDS = ["Pre-Depends", "Depends", "Recommends", "Provides", "Conflicts", "Breaks", "Replaces"] as const;
type RelationSlot = 0 | 1 | 2 | 3 | 4 | 5 | 6;

/**
 * A package read from a control paragraph. Its relationship fields are parsed on first read:
 * a `Packages` index has 64k stanzas and parsing all their relations up front costs most of a
 * cold build's index time, while a resolution only looks at a few hundred packages. They are
 * accessors on the prototype, so `{ ...pkg }` does not copy them (read them explicitly).
 */
class ControlPackage implements BinaryPackage {
  readonly #raw: Array<string | undefined>;
  readonly #parsed: Array<unknown> = [];

  constructor(
    readonly name: string,
    readonly version: string,
    readonly architecture: string,
    readonly multiArch: MultiArch,
    readonly essential: boolean,
    readonly priority: string | undefined,
    readonly section: string | undefined,
    readonly source: string,
    readonly installedSizeKiB: number | undefined,
    readonly filename: string | undefined,
    readonly size: number | undefined,
    readonly sha256: string | undefined,
    readonly paragraph: Paragraph,
    raw: Array<string | undefined>,
  ) {
    this.#raw = raw;
  }

  #relations(slot: RelationSlot): RelationField {
    let v = this.#parsed[slot] as RelationField | undefined;
    if (v === undefined) {
      try {
        v = parseRelationField(this.#raw[slot]);
      } catch (err) {
        return packageError(this.name, `${RELATION_FIELDS[slot]}: ${(err as Error).message}`);
      }
      this.#parsed[slot] = v;
    }
    return v;
  }

  get preDepends(): RelationField {
    return this.#relations(0);
  }
  get depends(): RelationField {
    return this.#relations(1);
  }
  get recommends(): RelationField {
    return this.#relations(2);
  }
  get provides(): ProvidedPackage[] {
    let v = this.#parsed[3] as ProvidedPackage[] | undefined;
    if (v === undefined) {
      try {
        v = parseProvides(this.#raw[3]);
      } catch (err) {
        return packageError(this.name, `Provides: ${(err as Error).message}`);
      }
      this.#parsed[3] = v;
    }
    return v;
  }
  get conflicts(): RelationField {
    return this.#relations(4);
  }
  get breaks(): RelationField {
    return this.#relations(5);
  }
  get replaces(): RelationField {
    return this.#relations(6);
  }

  /** Every field as a plain object (for logs and snapshots). */
  toJSON(): Omit<BinaryPackage, "paragraph"> {
    return {
      name: this.name,
      version: this.version,
      architecture: this.architecture,
      multiArch: this.multiArch,
      essential: this.essential,
      priority: this.priority,
      section: this.section,
      source: this.source,
      installedSizeKiB: this.installedSizeKiB,
      preDepends: this.preDepends,
      depends: this.depends,
      recommends: this.recommends,
      provides: this.provides,
      conflicts: this.conflicts,
      breaks: this.breaks,
      replaces: this.replaces,
      filename: this.filename,
      size: this.size,
      sha256: this.sha256,
    };
  }
}

/**
 * Reads a binary package from its control paragraph. `Package`, `Version` and `Architecture` are
 * required; names, versions (policy 5.6.12), `SHA256` and `Filename` are checked, so an index
 * cannot point a download outside the mirror. Relationship fields are parsed when first read
 * (a malformed one throws then, naming the package and field); pass `{ eager: true }` to check
 * them now, as for a `.deb` a user uploaded.
 * @throws KilnError `badRequest` naming the package and the bad field.
 */
export function packageFromParagraph(p: Paragraph, options: { eager?: boolean } = {}): BinaryPackage {
  const [
    name,
    version,
    architecture,
    multiArch,
    essential,
    priority,
    section,
    source,
    installedSize,
    preDepends,
    depends,
    recommends,
    provides,
    conflicts,
    breaks,
    replaces,
    filename,
    size,
    sha256,
  ] = readFields(p, SELECTION);
  if (name === undefined || name === "") return packageError(p, "a control paragraph has no Package field");
  if (!NAME_RE.test(name)) packageError(name, `"${name}" is not a valid package name`);
  if (version === undefined) packageError(name, "no Version field");
  const badVersion = versionError(version);
  if (badVersion !== undefined) packageError(name, `invalid version "${version}": ${badVersion}`);
  if (architecture === undefined) packageError(name, "no Architecture field");
  if (!ARCH_RE.test(architecture)) packageError(name, `invalid Architecture "${architecture}"`);
  if (sha256 !== undefined && !SHA256_RE.test(sha256)) packageError(name, `SHA256 "${sha256}" is not 64 hexadecimal digits`);
  if (filename !== undefined) {
    const unsafe = unsafeFilenameReason(filename);
    if (unsafe !== undefined) packageError(name, `refusing Filename "${filename}": ${unsafe}`);
  }
  const sourceName = source === undefined || source === "" ? name : source.split(/[\s(]/, 1)[0]!;
  const pkg = new ControlPackage(
    name,
    version,
    architecture,
    parseMultiArch(multiArch, name),
    parseEssential(essential, name),
    priority?.toLowerCase(),
    section,
    sourceName,
    parseCount(installedSize, name, "Installed-Size"),
    filename,
    parseCount(size, name, "Size"),
    sha256?.toLowerCase(),
    p,
    [preDepends, depends, recommends, provides, conflicts, breaks, replaces],
  );
  if (options.eager) pkg.toJSON();
  return pkg;
}

/** `name version`: how messages name a package. */
export function packageLabel(pkg: Pick<BinaryPackage, "name" | "version">): string {
  return `${pkg.name} ${pkg.version}`;
}
