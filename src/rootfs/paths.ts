/**
 * Path rules shared by the unpacker and the tree: archive names and view paths are turned into
 * Kiln's normalised relative form (`usr/bin/awk`: no leading `/` or `./`, no `.` or empty
 * components, no trailing `/`), and anything that could climb out of the root is refused.
 */

/** Why a name was refused, as a phrase that follows "entry <name>". */
export class UnsafePathError extends Error {}

/** Non-empty components without NUL, joined by single slashes... */
const NORMALISED = /^[^/\0]+(?:\/[^/\0]+)*$/;
/** ...none of them `.` or `..`. */
const DOT_PART = /(?:^|\/)\.\.?(?:\/|$)/;

/**
 * Normalises a name found in an archive (`./usr/bin/x`, `./usr/`, `.`): `""` stands for the
 * root itself. Refuses (throws {@link UnsafePathError}) a NUL byte, an absolute name and any
 * `..` component — even one that would stay inside (`usr/../etc`), as dpkg-deb never writes one.
 */
export function normaliseArchivePath(name: string): string {
  // Most names are normalised already (every path of a manifest or of the tree): said at once.
  if (NORMALISED.test(name) && !DOT_PART.test(name)) return name;
  if (name.includes("\0")) throw new UnsafePathError("contains a NUL byte");
  if (name.startsWith("/")) throw new UnsafePathError("is an absolute path");
  const parts: string[] = [];
  for (const part of name.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") throw new UnsafePathError("has a '..' component");
    parts.push(part);
  }
  return parts.join("/");
}

/**
 * Normalises a path given to the tree's read or write API. Leading `/` is accepted here (fix-ups
 * may say `/etc/passwd`), `..` is not.
 */
export function normaliseViewPath(p: string): string {
  return normaliseArchivePath(p.replace(/^\/+/, ""));
}

/** `usr/bin` + `awk` → `usr/bin/awk`; the root is `""`. */
export function joinPath(dir: string, name: string): string {
  return dir === "" ? name : `${dir}/${name}`;
}

/** `usr/bin/awk` → `usr/bin`; a top-level name's parent is the root `""`. */
export function parentPath(p: string): string {
  const i = p.lastIndexOf("/");
  return i < 0 ? "" : p.slice(0, i);
}

/** `usr/bin/awk` → `awk`. */
export function baseName(p: string): string {
  return p.slice(p.lastIndexOf("/") + 1);
}

/** How dpkg writes a path in `info/<pkg>.list`: `/usr/bin/awk`, and the root as `/.`. */
export function listPath(p: string): string {
  return p === "" ? "/." : `/${p}`;
}
