/**
 * Synthetic inputs for fix-up tests: small trees written to a temp dir, and InstalledPackage
 * records with the control members a test needs.
 */
import { chmodSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { InstalledPackage } from "../../../src/rootfs/types.js";
import { binaryPackage, parseControl } from "./minbase.js";

/** A node of a synthetic tree: file content, `{ link }`, or `{ dir }` (with an optional mode). */
export type Node = string | Buffer | { link: string } | { dir: true; mode?: number } | { file: string | Buffer; mode: number };

/** Writes the nodes into a fresh temp dir (parents created as needed) and returns its path. */
export function tempTree(nodes: Record<string, Node>): string {
  const root = mkdtempSync(path.join(os.tmpdir(), "kiln-fixup-"));
  chmodSync(root, 0o755);
  for (const [p, n] of Object.entries(nodes)) {
    const abs = path.join(root, p);
    mkdirSync(path.dirname(abs), { recursive: true });
    if (typeof n === "string" || Buffer.isBuffer(n)) writeFileSync(abs, n);
    else if ("link" in n) symlinkSync(n.link, abs);
    else if ("dir" in n) {
      mkdirSync(abs, { recursive: true });
      if (n.mode !== undefined) chmodSync(abs, n.mode);
    } else {
      writeFileSync(abs, n.file);
      chmodSync(abs, n.mode);
    }
  }
  return root;
}

/** An installed package with the given control fields and members. */
export function syntheticPackage(opts: {
  name: string;
  version?: string;
  architecture?: string;
  fields?: Record<string, string>;
  control?: string;
  members?: Record<string, string | Buffer>;
  files?: string[];
}): InstalledPackage {
  const control =
    opts.control ??
    [
      `Package: ${opts.name}`,
      `Version: ${opts.version ?? "1.0"}`,
      `Architecture: ${opts.architecture ?? "amd64"}`,
      "Maintainer: Kiln Tests <tests@example.org>",
      ...Object.entries(opts.fields ?? {}).map(([k, v]) => `${k}: ${v}`),
      `Description: test package ${opts.name}`,
      "",
    ].join("\n");
  const controlFiles = new Map<string, Buffer>();
  for (const [k, v] of Object.entries(opts.members ?? {})) controlFiles.set(k, Buffer.isBuffer(v) ? v : Buffer.from(v));
  return { pkg: binaryPackage(parseControl(control)), controlFiles, files: opts.files ?? ["/."] };
}
