/**
 * The Java trust store `/etc/ssl/certs/java/cacerts`, which ca-certificates-java's postinst and
 * trigger build by running `java -jar ca-certificates-java.jar` — made here without running
 * Java: a JKS keystore (the format the package keeps, "changeit" or `storepass` from
 * `/etc/default/cacerts`) with one trusted-certificate entry per `.pem` link of `/etc/ssl/certs`
 * that leads into `/usr/share/ca-certificates` or `/usr/local/share/ca-certificates` (in sorted
 * order, as `find | sort` feeds them), each aliased `debian:<link name>` in lower case.
 *
 * The JKS format (sun.security.provider.JavaKeyStore, version 2): magic 0xFEEDFEED, version, the
 * entry count, each entry (tag 2, alias, creation time in milliseconds, "X.509", the DER), then a
 * SHA-1 over the password's UTF-16 bytes, "Mighty Aphrodite" and everything before. Entries are
 * written in the order the JDK's Hashtable enumerates them, and every creation time is the build
 * clock (Java's run would stamp its own clock: the only bytes a real run cannot reproduce).
 */
import { createHash } from "node:crypto";
import type { Fixup, FixupContext } from "../types.js";
import { readContent } from "./script/overlay.js";
import { compareBytes, EntrySet, joinPath, readText } from "./tree.js";
import { pemBlocks } from "./x509.js";

const CACERTS = "etc/ssl/certs/java/cacerts";

/** Java's `String.hashCode`. */
function javaHash(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(h, 31) + s.charCodeAt(i)) | 0;
  return h;
}

/**
 * The order `java.util.Hashtable` (initial capacity 11, load factor 0.75) enumerates keys
 * inserted in this order: buckets from the last to the first, each bucket newest first, with
 * the chains its rehashes reversed.
 */
export function hashtableOrder(keys: readonly string[]): string[] {
  let table: string[][] = Array.from({ length: 11 }, () => []);
  let count = 0;
  let threshold = Math.floor(11 * 0.75);
  const index = (k: string, n: number): number => (javaHash(k) & 0x7fffffff) % n;
  for (const key of keys) {
    if (table.some((b) => b.includes(key))) continue;
    if (count >= threshold) {
      const n = table.length * 2 + 1;
      const next: string[][] = Array.from({ length: n }, () => []);
      for (let i = table.length - 1; i >= 0; i--) for (const k of table[i]!) next[index(k, n)]!.unshift(k);
      table = next;
      threshold = Math.floor(n * 0.75);
    }
    table[index(key, table.length)]!.unshift(key);
    count++;
  }
  const out: string[] = [];
  for (let i = table.length - 1; i >= 0; i--) out.push(...table[i]!);
  return out;
}

/** Java's `DataOutputStream.writeUTF` (modified UTF-8; aliases here are plain text). */
function writeUtf(s: string): Buffer {
  const body = Buffer.from(s, "utf8");
  const len = Buffer.alloc(2);
  len.writeUInt16BE(body.length);
  return Buffer.concat([len, body]);
}

/** A JKS keystore of trusted certificates. */
export function jksKeystore(entries: ReadonlyArray<{ alias: string; der: Buffer }>, password: string, clock: Date): Buffer {
  const byAlias = new Map(entries.map((e) => [e.alias.toLowerCase(), e.der]));
  const order = hashtableOrder(entries.map((e) => e.alias.toLowerCase()));
  const parts: Buffer[] = [];
  const int = (n: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n >>> 0);
    return b;
  };
  parts.push(int(0xfeedfeed), int(2), int(order.length));
  for (const alias of order) {
    const der = byAlias.get(alias)!;
    const time = Buffer.alloc(8);
    time.writeBigInt64BE(BigInt(clock.getTime()));
    parts.push(int(2), writeUtf(alias), time, writeUtf("X.509"), int(der.length), der);
  }
  const body = Buffer.concat(parts);
  const pass = Buffer.alloc(password.length * 2);
  for (let i = 0; i < password.length; i++) pass.writeUInt16BE(password.charCodeAt(i), i * 2);
  const digest = createHash("sha1").update(pass).update("Mighty Aphrodite", "utf8").update(body).digest();
  return Buffer.concat([body, digest]);
}

/** The trusted certificates of a JKS keystore, by alias (the harness and the tests read it back). */
export function readJks(b: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  if (b.readUInt32BE(0) !== 0xfeedfeed) throw new Error("not a JKS keystore");
  const count = b.readUInt32BE(8);
  let at = 12;
  const utf = (): string => {
    const n = b.readUInt16BE(at);
    const s = b.subarray(at + 2, at + 2 + n).toString("utf8");
    at += 2 + n;
    return s;
  };
  for (let k = 0; k < count; k++) {
    const tag = b.readUInt32BE(at);
    at += 4;
    if (tag !== 2) throw new Error("only trusted certificate entries are read");
    const alias = utf();
    at += 8;
    utf();
    const n = b.readUInt32BE(at);
    out.set(alias, b.subarray(at + 4, at + 4 + n));
    at += 4 + n;
  }
  return out;
}

export function javaCacertsFixup(): Fixup {
  return {
    name: "java-cacerts",
    replaces: "ca-certificates-java's postinst and trigger (java -jar ca-certificates-java.jar)",
    async apply(ctx: FixupContext) {
      const fs = ctx.fs;
      const set = new EntrySet(fs);
      if (!ctx.packages.some((p) => p.pkg.name === "ca-certificates-java") || fs.lstat(CACERTS) || !fs.stat("usr/bin/java")) return set.result();
      const defaults = (await readText(fs, "etc/default/cacerts")) ?? "";
      const storepass = /^storepass=['"]?([^'"\n]*)['"]?$/m.exec(defaults)?.[1] ?? "changeit";
      if (/^cacerts_updates=['"]?no/m.test(defaults)) return set.result();
      const entries: Array<{ alias: string; der: Buffer }> = [];
      for (const name of fs.readdir("etc/ssl/certs").sort(compareBytes)) {
        const link = fs.lstat(joinPath("etc/ssl/certs", name));
        if (link?.type !== "symlink" || !name.endsWith(".pem")) continue;
        if (!/^\/usr\/(local\/)?share\/ca-certificates/.test(link.linkname ?? "")) continue;
        const file = fs.stat(joinPath("etc/ssl/certs", name));
        if (file?.type !== "file" || !file.content) continue;
        const block = pemBlocks((await readContent(file.content)).toString("latin1")).find((b) => b.label === "CERTIFICATE");
        if (block) entries.push({ alias: `debian:${name}`, der: block.der });
      }
      if (!fs.lstat("etc/ssl/certs/java")) set.dir("etc/ssl/certs/java");
      set.file(CACERTS, jksKeystore(entries, storepass, ctx.clock), 0o644);
      if (!fs.lstat("var/lib/ca-certificates-java")) set.dir("var/lib/ca-certificates-java");
      return set.result();
    },
  };
}
