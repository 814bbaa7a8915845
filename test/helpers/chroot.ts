/**
 * Runs a shell script in a chroot of an image's tree as a user would, with /dev and /proc (and
 * any host directories bind-mounted into the tree), all in a private mount namespace: the mounts
 * end with the script, even if it fails, and never reach the host's.
 */
import { execFileSync } from "node:child_process";

export interface ChrootOptions {
  /** "isolated": a network namespace of its own with only `lo` up; default: the host's network. */
  network?: "host" | "isolated";
  /** `user:group` to run as (chroot --userspec); default root. */
  user?: string;
  /** Directories of the host to bind-mount read-only, by their path in the tree (`{ "/mirror": dir }`). */
  binds?: Record<string, string>;
}

/** The script's standard output; throws (with its standard error) if it fails. */
export function inChroot(root: string, script: string, options: ChrootOptions = {}): string {
  const isolated = options.network === "isolated";
  const wrapper = `set -e
root="$1"; script="$2"; shift 2
mount --rbind /dev "$root/dev"; mount -t proc proc "$root/proc"
while [ $# -gt 0 ]; do mkdir -p "$root/$1"; mount --bind "$2" "$root/$1"; mount -o remount,bind,ro "$root/$1"; shift 2; done
${isolated ? "ip link set lo up" : ""}
exec chroot ${options.user ? `--userspec=${options.user}` : ""} "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive /bin/sh -c "$script"`;
  const binds = Object.entries(options.binds ?? {}).flat();
  return execFileSync("unshare", ["-m", ...(isolated ? ["-n"] : []), "--propagation", "private", "sh", "-c", wrapper, "chroot", root, script, ...binds], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}
