/**
 * What a filesystem tree is made of, as Kiln assembles it (in memory, never on the host) and as
 * the OCI writer turns it into layer tars.
 */
import { Readable as NodeReadable, type Readable } from "node:stream";

export type NodeType = "file" | "dir" | "symlink" | "hardlink" | "char" | "block" | "fifo";

/** Where a regular file's bytes come from; opened only when the layer is written. */
export interface ContentRef {
  readonly size: number;
  /** md5 (hex) of the bytes when already known (files unpacked from a `.deb`), for dpkg's databases. */
  readonly md5?: string;
  /** A fresh stream of exactly `size` bytes. */
  open(): Readable;
  /**
   * The whole content at once, where that is cheap (a small file): the tar writer uses it for
   * small files to skip a stream per file, which is most of the cost of writing thousands of them.
   */
  read?(): Promise<Buffer>;
  /**
   * The whole content at once without waiting, or `undefined` when that would mean waiting (a
   * large file, a stream): bytes in memory, or a small range of a file that was just written.
   * The tar writer packs runs of such files without going back to the event loop.
   */
  readSync?(): Buffer | undefined;
  /** `length` bytes from `offset` (fewer at the end), where random access is cheap (ELF headers). */
  readAt?(offset: number, length: number): Promise<Buffer>;
}

/** One entry of a filesystem tree. */
export interface FsEntry {
  /** Relative, normalised path: no leading `/` or `./`, no `..`, no trailing `/` (`usr/bin/awk`). */
  path: string;
  type: NodeType;
  /** Permission bits including setuid/setgid/sticky (`0o4755`), without the file-type bits. */
  mode: number;
  uid: number;
  gid: number;
  /** Target of a symlink (verbatim), or the normalised path a hard link points to. */
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** Regular files only. */
  content?: ContentRef;
  /**
   * Extended attributes by name (`security.capability` for file capabilities, as `setcap`
   * writes them). Written to layers as PAX `SCHILY.xattr.<name>` records.
   */
  xattrs?: Readonly<Record<string, Buffer>>;
}

/** A ContentRef over an in-memory buffer (fix-up outputs: passwd, dpkg status, ...). */
export function bufferContent(data: Buffer | string): ContentRef {
  const buf = typeof data === "string" ? Buffer.from(data) : data;
  return { size: buf.length, open: () => NodeReadable.from([buf], { objectMode: false }), read: async () => buf, readSync: () => buf };
}

/** A package as unpacked into a rootfs: what the dpkg database and the fix-ups need to know. */
export interface InstalledPackage {
  pkg: import("../debian/types.js").BinaryPackage;
  /** Members of control.tar other than `control` itself: `md5sums`, `conffiles`, `postinst`, `triggers`, `shlibs`, ... */
  controlFiles: ReadonlyMap<string, Buffer>;
  /**
   * Paths the package ships, as dpkg records them in `info/<pkg>.list`: absolute, in archive
   * order, directories included, *as written in the package* (`/bin/bash`, even though the
   * merged-/usr rootfs stores it at `usr/bin/bash`), without the paths another package took over.
   */
  files: string[];
}

/** Read access to an assembled rootfs (what fix-ups may look at). Paths are relative, normalised. */
export interface RootfsView {
  /** The entry at `path` itself (a symlink is not followed), or undefined. */
  lstat(path: string): FsEntry | undefined;
  /** The entry at `path` with every symlink along the way resolved inside the root, or undefined. */
  stat(path: string): FsEntry | undefined;
  /** Resolves symlinks (within the root) and returns the normalised real path, or undefined if it does not exist. */
  realpath(path: string): string | undefined;
  /** A regular file's bytes (following symlinks). Throws if it is not a regular file. */
  readFile(path: string): Promise<Buffer>;
  /** Names of a directory's direct children (following symlinks), sorted. */
  readdir(path: string): string[];
}

/** What one fix-up sees: the unpacked packages (in install order) and the tree so far. */
export interface FixupContext {
  packages: readonly InstalledPackage[];
  fs: RootfsView;
  /** Debian architecture (`amd64`). */
  arch: string;
  clock: Date;
}

/**
 * One fix-up: replaces what a package script would have done. It returns the entries it adds
 * or replaces (and paths it removes); the builder applies them before the next fix-up runs.
 */
export interface Fixup {
  readonly name: string;
  /** Why this fix-up exists: which package script it stands in for. */
  readonly replaces: string;
  apply(ctx: FixupContext): Promise<{ entries: FsEntry[]; remove?: string[] }>;
}
