/**
 * `/etc/nsswitch.conf`, which libc-bin's postinst copies from
 * `/usr/share/libc-bin/nsswitch.conf` at first configuration (`cp -p`: same mode and owner).
 * Without it glibc falls back to built-in defaults, and `getent` and every NSS lookup inside the
 * image would not follow Debian's configuration.
 */
import type { Fixup, FixupContext } from "../types.js";
import { EntrySet, regularFile } from "./tree.js";

/** The libc-bin nsswitch.conf fix-up. */
export function nsswitchFixup(): Fixup {
  return {
    name: "nsswitch",
    replaces: "libc-bin postinst (install_from_default nsswitch.conf)",
    async apply(ctx: FixupContext) {
      const set = new EntrySet(ctx.fs);
      const src = regularFile(ctx.fs, "usr/share/libc-bin/nsswitch.conf");
      if (src && !regularFile(ctx.fs, "etc/nsswitch.conf")) {
        set.add({ path: "etc/nsswitch.conf", type: "file", mode: src.mode, uid: src.uid, gid: src.gid, content: src.content! });
      }
      return set.result();
    },
  };
}
