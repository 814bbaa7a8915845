/**
 * Entries for the OCI writer tests, built in code: every node type, setuid/setgid/sticky modes,
 * owners other than root, hard links declared in both directions, names that need the ustar
 * prefix field or PAX records (long, non-ASCII), a link target over 100 bytes.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { promisify } from "node:util";
import { BlobStore } from "../../src/blobs/blob-store.js";
import { bufferContent, type ContentRef, type FsEntry } from "../../src/rootfs/types.js";

export const run = promisify(execFile);

/** Long names: one that fits ustar's prefix+name split (> 100 bytes), one that needs PAX (> 255 bytes). */
export const LONG_DIR = `opt/${"d".repeat(90)}`;
export const LONG_FILE = `${LONG_DIR}/${"f".repeat(60)}.txt`; // 159 bytes: prefix/name
export const DEEP_DIR = `${LONG_DIR}/${"e".repeat(120)}`;
export const DEEP_FILE = `${DEEP_DIR}/${"g".repeat(100)}.bin`; // 320 bytes: PAX path
export const UNICODE_DIR = "usr/share/ünïcödé";
export const UNICODE_FILE = `${UNICODE_DIR}/日本語.txt`;
export const LONG_TARGET = `../../${"t".repeat(120)}/target`;

/** Deterministic, mildly compressible bytes. */
export function patternBytes(size: number, seed = 1): Buffer {
  const out = Buffer.alloc(size);
  let x = seed * 2654435761;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = i % 7 === 0 ? x >>> 24 : 0x61 + (i % 13);
  }
  return out;
}

const dir = (p: string, mode = 0o755, uid = 0, gid = 0): FsEntry => ({ path: p, type: "dir", mode, uid, gid });
const file = (p: string, data: Buffer | string, mode = 0o644, uid = 0, gid = 0): FsEntry => ({ path: p, type: "file", mode, uid, gid, content: bufferContent(data) });

/** A small tree with one of everything. */
export function sampleEntries(): FsEntry[] {
  return [
    dir("dev"),
    { path: "dev/null", type: "char", mode: 0o666, uid: 0, gid: 0, devmajor: 1, devminor: 3 },
    { path: "dev/loop0", type: "block", mode: 0o660, uid: 0, gid: 6, devmajor: 7, devminor: 0 },
    dir("etc"),
    file("etc/hostname", "kiln\n"),
    file("etc/shadow", "root:*:19000:0:99999:7:::\n", 0o640, 0, 42),
    dir("opt"),
    dir(LONG_DIR),
    file(LONG_FILE, "long name\n"),
    dir(DEEP_DIR),
    file(DEEP_FILE, patternBytes(3000, 3)),
    dir("run"),
    { path: "run/initctl", type: "fifo", mode: 0o600, uid: 0, gid: 0 },
    dir("tmp", 0o1777),
    dir("usr"),
    dir("usr/bin"),
    // Declared as the link, but sorts before its target: the writer must put the content here.
    { path: "usr/bin/aa-alias", type: "hardlink", mode: 0o755, uid: 0, gid: 0, linkname: "usr/bin/tool" },
    file("usr/bin/passwd", patternBytes(5000, 2), 0o4755),
    file("usr/bin/tool", patternBytes(200_000, 1), 0o755),
    { path: "usr/bin/tool2", type: "hardlink", mode: 0o755, uid: 0, gid: 0, linkname: "usr/bin/tool" },
    file("usr/bin/wall", "#!/bin/sh\n", 0o2755, 0, 5),
    dir("usr/lib"),
    file("usr/lib/libx.so.1", patternBytes(70_000, 4)),
    { path: "usr/lib/libx.so", type: "symlink", mode: 0o777, uid: 0, gid: 0, linkname: "libx.so.1" },
    { path: "usr/lib/long-link", type: "symlink", mode: 0o777, uid: 0, gid: 0, linkname: LONG_TARGET },
    { path: "usr/lib/sh", type: "symlink", mode: 0o777, uid: 0, gid: 0, linkname: "/bin/dash" },
    // "usr/lib-compat" sorts after everything under "usr/lib" (component order), before it as a string.
    file("usr/lib-compat", "x\n"),
    dir("usr/share"),
    dir(UNICODE_DIR),
    file(UNICODE_FILE, "こんにちは\n"),
    // UTF-16 and UTF-8 order these two differently; archives use bytes.
    file(`${UNICODE_DIR}/\u{ff5e}`, "wave\n"),
    file(`${UNICODE_DIR}/\u{1f600}`, "smile\n"),
    dir("home"),
    dir("home/user", 0o750, 1000, 1000),
    file("home/user/.profile", "export X=1\n", 0o600, 1000, 1000),
    file("home/user/big-owner", "uid beyond ustar\n", 0o644, 3_000_000, 3_000_001),
    file("home/user/empty", ""),
  ];
}

/** Fisher-Yates with a fixed seed: a different, reproducible input order. */
export function shuffled<T>(items: readonly T[], seed = 7): T[] {
  const out = [...items];
  let x = seed;
  for (let i = out.length - 1; i > 0; i--) {
    x = (x * 1103515245 + 12345) >>> 0;
    const j = x % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** A ContentRef that declares `declared` bytes but delivers `actual`. */
export function lyingContent(declared: number, actual: number): ContentRef {
  return { size: declared, open: () => Readable.from([Buffer.alloc(actual, 0x41)]) };
}

/** A fresh scratch directory and blob store, removed by `cleanup`. */
export async function scratch(): Promise<{ dir: string; blobs: BlobStore; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "kiln-oci-"));
  return { dir, blobs: BlobStore.open(path.join(dir, "store")), cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export function sha256(data: Buffer): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

/** Collects a stream (small test outputs only). */
export async function collect(stream: AsyncIterable<Buffer | string>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(typeof c === "string" ? Buffer.from(c) : c);
  return Buffer.concat(chunks);
}

/** A file entry of `size` bytes made of `block` repeated, generated as it is read (never held whole). */
export function repeatingFile(filePath: string, size: number, block: Buffer): FsEntry {
  return {
    path: filePath,
    type: "file",
    mode: 0o644,
    uid: 0,
    gid: 0,
    content: {
      size,
      open: () => {
        let left = size;
        return new Readable({
          read() {
            if (left === 0) return void this.push(null);
            const n = Math.min(left, block.length);
            left -= n;
            this.push(n === block.length ? block : block.subarray(0, n));
          },
        });
      },
    },
  };
}

/** A 10 MiB file entry whose stream delivers `first`, then stalls for ever; `opened()` says whether it was opened. */
export function stallingFile(filePath: string, first: Buffer): { entry: FsEntry; opened: () => boolean } {
  let opened = false;
  const entry: FsEntry = {
    path: filePath,
    type: "file",
    mode: 0o644,
    uid: 0,
    gid: 0,
    content: {
      size: 10 << 20,
      open: () => {
        opened = true;
        let sent = false;
        return new Readable({
          read() {
            if (!sent) {
              sent = true;
              this.push(first);
            }
          },
        });
      },
    },
  };
  return { entry, opened: () => opened };
}
