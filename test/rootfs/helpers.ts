/** Small helpers the rootfs tests share. */
import type { Rootfs } from "../../src/rootfs/rootfs.js";

/** A comparable picture of a tree: every node's metadata, file sizes and md5s. */
export function snapshot(fs: Rootfs, filter?: (owner: string) => boolean): Array<Record<string, unknown>> {
  return fs.entries(filter).map((e) => ({
    path: e.path,
    type: e.type,
    mode: e.mode,
    uid: e.uid,
    gid: e.gid,
    owner: fs.owner(e.path),
    ...(e.linkname !== undefined ? { linkname: e.linkname } : {}),
    ...(e.content ? { size: e.content.size, md5: e.content.md5 } : {}),
  }));
}

/** The file lists of every installed package, by name. */
export function fileLists(fs: Rootfs): Record<string, string[]> {
  return Object.fromEntries(fs.installedPackages().map((p) => [p.pkg.name, p.files]));
}

/** Runs `fn` and returns what it threw (failing the test if it did not). */
export async function thrown(fn: () => unknown): Promise<Error> {
  try {
    await fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error("expected an error, none was thrown");
}
