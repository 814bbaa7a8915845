/**
 * The time zone that tzdata's postinst configures: with debconf unattended (as in debootstrap)
 * its answer is `Etc/UTC`, so it links `/etc/localtime -> /usr/share/zoneinfo/Etc/UTC` and
 * writes `/etc/timezone` ("Etc/UTC\n"). Only when tzdata is installed: without it debootstrap's
 * own `/etc/localtime -> /usr/share/zoneinfo/UTC` would dangle, so none is made.
 */
import type { Fixup, FixupContext } from "../types.js";
import { controlText } from "./options.js";
import { EntrySet } from "./tree.js";

/** The zone an unattended installation picks. */
export const DEFAULT_TIMEZONE = "Etc/UTC";

/** The tzdata fix-up. */
export function tzdataFixup(): Fixup {
  return {
    name: "tzdata",
    replaces: "tzdata postinst (debconf default Etc/UTC)",
    async apply(ctx: FixupContext) {
      const set = new EntrySet(ctx.fs);
      if (ctx.fs.stat(`usr/share/zoneinfo/${DEFAULT_TIMEZONE}`)) {
        set.symlink("etc/localtime", `/usr/share/zoneinfo/${DEFAULT_TIMEZONE}`);
        // bookworm's postinst writes /etc/timezone; trixie's only rewrites one that exists.
        const tzdata = ctx.packages.find((p) => p.pkg.name === "tzdata");
        const onlyRewrites = /test -f "\$DPKG_ROOT\/etc\/timezone"/.test((tzdata && controlText(tzdata, "postinst")) ?? "");
        if (!onlyRewrites) set.file("etc/timezone", `${DEFAULT_TIMEZONE}\n`);
      }
      return set.result();
    },
  };
}
