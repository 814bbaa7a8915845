/**
 * Runs once before the suite: makes sure the local Debian mirror the builder tests use exists.
 * It is built by tools/make-local-mirror.sh (apt-get download of bookworm's minbase packages plus
 * a few extras) into .cache/mirror and reused by later runs; tests only ever read it from disk or
 * serve it on loopback.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";

export const ROOT = path.resolve(import.meta.dirname, "../..");
export const MIRROR_DIR = path.join(ROOT, ".cache/mirror");
/** Packages beyond minbase that tests install (jq: a real dependency chain outside minbase). */
export const EXTRA_PACKAGES = ["jq", "libjq1", "libonig5"];

export default function setup(): void {
  const stamp = path.join(MIRROR_DIR, "dists/bookworm/Release");
  if (existsSync(stamp) && EXTRA_PACKAGES.every((p) => readFileSync(path.join(MIRROR_DIR, "dists/bookworm/main/binary-amd64/Packages"), "utf8").includes(`\nPackage: ${p}\n`))) return;
  const minbase = readFileSync(path.join(ROOT, "tools/minbase-bookworm.txt"), "utf8").split("\n").filter(Boolean);
  execFileSync("bash", [path.join(ROOT, "tools/make-local-mirror.sh"), MIRROR_DIR, ...minbase, ...EXTRA_PACKAGES], { stdio: "inherit" });
}
