/**
 * What a filesystem tree is made of, as Kiln assembles it (in memory, never on the host) and as
 * the OCI writer turns it into layer tars.
 */
import { Readable as NodeReadable, type Readable } from "node:stream";

export type NodeType = "file" | "dir" | "symlink" | "hardlink" | "char" | "block" | "fifo";

/** Where a regular file's bytes come from; opened only when the layer is written. */
export interface ContentRef {
  readonly size: number;
  /** A fresh stream of exactly `size` bytes. */
  open(): Readable;
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
}

/** A ContentRef over an in-memory buffer (fix-up outputs: passwd, dpkg status, ...). */
export function bufferContent(data: Buffer | string): ContentRef {
  const buf = typeof data === "string" ? Buffer.from(data) : data;
  return { size: buf.length, open: () => NodeReadable.from([buf], { objectMode: false }) };
}
