import { lstat, mkdir, readFile, readlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { Readable } from "node:stream";
import { extract } from "tar-stream";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { isKilnError } from "../../src/domain/errors.js";
import { encodeHeader, planTar, tarChunks } from "../../src/oci/tar.js";
import type { FsEntry } from "../../src/rootfs/types.js";
import { DEEP_DIR, DEEP_FILE, LONG_FILE, LONG_TARGET, UNICODE_DIR, UNICODE_FILE, collect, lyingContent, patternBytes, run, sampleEntries, scratch, shuffled } from "./fixtures.js";

const clock = new Date("2024-03-01T12:00:00Z");
let work: Awaited<ReturnType<typeof scratch>>;

beforeAll(async () => {
  work = await scratch();
});
afterAll(async () => work.cleanup());

async function tarBytes(entries: FsEntry[], at = clock): Promise<Buffer> {
  return collect(tarChunks(entries, { clock: at }));
}

/** Headers as an independent reader (tar-stream's extract) sees them, PAX records included. */
async function readHeaders(tar: Buffer): Promise<Array<{ name: string; type: string; mtime: number; uname: string; gname: string; linkname: string | null; pax: Record<string, string> | null; size: number }>> {
  const ex = extract();
  const out: Array<{ name: string; type: string; mtime: number; uname: string; gname: string; linkname: string | null; pax: Record<string, string> | null; size: number }> = [];
  const done = (async () => {
    for await (const entry of ex) {
      const h = entry.header;
      out.push({ name: h.name, type: h.type, mtime: h.mtime.getTime(), uname: h.uname, gname: h.gname, linkname: h.linkname, pax: (h.pax as Record<string, string> | null) ?? null, size: h.size });
      entry.resume();
    }
  })();
  Readable.from([tar]).pipe(ex);
  await done;
  return out;
}

/** Component-wise byte order, computed independently of the writer. */
function expectedOrder(paths: string[]): string[] {
  const cmp = (a: string, b: string): number => {
    const pa = a.split("/");
    const pb = b.split("/");
    for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
      const c = Buffer.compare(Buffer.from(pa[i]!), Buffer.from(pb[i]!));
      if (c !== 0) return c;
    }
    return pa.length - pb.length;
  };
  return [...paths].sort(cmp);
}

describe("tar writer", () => {
  test("GNU tar extracts every entry with its type, mode, owner, link target and content", async () => {
    const entries = sampleEntries();
    const tarFile = path.join(work.dir, "sample.tar");
    await writeFile(tarFile, await tarBytes(entries));
    const root = path.join(work.dir, "gnu");
    await mkdir(root);
    await run("tar", ["--numeric-owner", "-xpf", tarFile, "-C", root]);

    for (const e of entries) {
      const st = await lstat(path.join(root, e.path));
      const typeOk = { dir: st.isDirectory(), file: st.isFile(), hardlink: st.isFile(), symlink: st.isSymbolicLink(), char: st.isCharacterDevice(), block: st.isBlockDevice(), fifo: st.isFIFO() }[e.type];
      expect(typeOk, `${e.path} is a ${e.type}`).toBe(true);
      if (e.type !== "symlink") expect((st.mode & 0o7777).toString(8), `mode of ${e.path}`).toBe(e.mode.toString(8));
      expect([st.uid, st.gid], `owner of ${e.path}`).toEqual([e.uid, e.gid]);
      if (e.type === "symlink") expect(await readlink(path.join(root, e.path))).toBe(e.linkname);
      if (e.type === "file") expect((await readFile(path.join(root, e.path))).equals(await collect(e.content!.open())), `content of ${e.path}`).toBe(true);
      if (e.type === "char" || e.type === "block") expect([Math.floor(st.rdev / 256), st.rdev % 256]).toEqual([e.devmajor, e.devminor]);
    }
    const tool = await lstat(path.join(root, "usr/bin/tool"));
    const alias = await lstat(path.join(root, "usr/bin/aa-alias"));
    const tool2 = await lstat(path.join(root, "usr/bin/tool2"));
    expect(tool.nlink).toBe(3);
    expect([alias.ino, tool2.ino]).toEqual([tool.ino, tool.ino]);
  });

  test("entries come in component byte order, directories before their contents, links after their target", async () => {
    const entries = sampleEntries();
    const headers = (await readHeaders(await tarBytes(entries))).map((h) => ({ ...h, name: h.name.replace(/\/$/, "") }));
    expect(headers.map((h) => h.name)).toEqual(expectedOrder(entries.map((e) => e.path)));
    // The hard-link group is rewritten so the first member in archive order carries the content.
    const byName = new Map(headers.map((h) => [h.name, h]));
    expect(byName.get("usr/bin/aa-alias")).toMatchObject({ type: "file", size: 200_000 });
    expect(byName.get("usr/bin/tool")).toMatchObject({ type: "link", linkname: "usr/bin/aa-alias", size: 0 });
    expect(byName.get("usr/bin/tool2")).toMatchObject({ type: "link", linkname: "usr/bin/aa-alias" });
    const seen = new Set<string>();
    for (const h of headers) {
      const parent = h.name.includes("/") ? h.name.slice(0, h.name.lastIndexOf("/")) : undefined;
      if (parent) expect(seen.has(parent), `${parent} before ${h.name}`).toBe(true);
      if (h.type === "link") expect(seen.has(h.linkname!), `${h.linkname} before ${h.name}`).toBe(true);
      seen.add(h.name);
    }
  });

  test("headers are normalised: one mtime, no user names, PAX only where ustar cannot hold the value", async () => {
    const headers = await readHeaders(await tarBytes(sampleEntries()));
    for (const h of headers) {
      expect(h.mtime, h.name).toBe(clock.getTime());
      expect([h.uname, h.gname], h.name).toEqual(["", ""]);
    }
    const withPax = headers.filter((h) => h.pax !== null).map((h) => h.name.replace(/\/$/, ""));
    expect(withPax.sort()).toEqual([DEEP_DIR, DEEP_FILE, UNICODE_DIR, UNICODE_FILE, `${UNICODE_DIR}/\u{ff5e}`, `${UNICODE_DIR}/\u{1f600}`, "home/user/big-owner", "usr/lib/long-link"].sort());
    const byName = new Map(headers.map((h) => [h.name.replace(/\/$/, ""), h]));
    expect(byName.get(DEEP_FILE)!.pax).toEqual({ path: DEEP_FILE });
    expect(byName.get(UNICODE_DIR)!.pax).toEqual({ path: `${UNICODE_DIR}/` });
    expect(byName.get("usr/lib/long-link")!.pax).toEqual({ linkpath: LONG_TARGET });
    expect(byName.get("home/user/big-owner")!.pax).toEqual({ uid: "3000000", gid: "3000001" });
    // 159 bytes fit the ustar prefix/name split: no PAX record needed.
    expect(byName.get(LONG_FILE)!.pax).toBeNull();
    // tar-stream's raw view shows the size and the end: two zero blocks, no 10 KiB record padding.
    const tar = await tarBytes(sampleEntries());
    expect(tar.length % 512).toBe(0);
    expect(tar.subarray(tar.length - 1024).equals(Buffer.alloc(1024))).toBe(true);
    expect(tar.subarray(tar.length - 1536, tar.length - 1024).equals(Buffer.alloc(512))).toBe(false);
  });

  test("the bytes depend on the entries and the clock only, not on the input order", async () => {
    const a = await tarBytes(sampleEntries());
    const b = await tarBytes(shuffled(sampleEntries()));
    const c = await tarBytes(sampleEntries(), new Date("2024-03-01T12:00:01Z"));
    expect(b.equals(a)).toBe(true);
    expect(c.equals(a)).toBe(false);
    expect(c.length).toBe(a.length);
  });

  test("a size of 8 GiB or more goes into a PAX size record", () => {
    const huge = 9 * 2 ** 30;
    const [t] = planTar([{ path: "huge", type: "file", mode: 0o644, uid: 0, gid: 0, content: { size: huge, open: () => Readable.from([]) } }]);
    const h = encodeHeader(t!, 0);
    expect(h.length).toBe(3 * 512);
    expect(String.fromCharCode(h[156]!)).toBe("x");
    const records = h.subarray(512, 1024).toString("utf8").replace(/\0+$/, "");
    expect(records).toBe(`${" size=9663676416\n".length + 2} size=9663676416\n`);
    expect(h.subarray(1024 + 124, 1024 + 136).toString("ascii")).toBe("00000000000\0");
    // A small size needs no extended header.
    const small = encodeHeader(planTar([{ path: "f", type: "file", mode: 0o644, uid: 0, gid: 0, content: { size: 5, open: () => Readable.from([]) } }])[0]!, 0);
    expect(small.length).toBe(512);
  });

  test("big files are streamed in fixed 1 MiB chunks", async () => {
    const big: FsEntry = { path: "big", type: "file", mode: 0o644, uid: 0, gid: 0, content: { size: 3_500_000, open: () => Readable.from([patternBytes(1_000_003), patternBytes(2_499_997)]) } };
    const sizes: number[] = [];
    for await (const c of tarChunks([big], { clock })) sizes.push(c.length);
    expect(sizes.slice(0, -1).every((s) => s === 1 << 20)).toBe(true);
    expect(sizes.reduce((s, n) => s + n, 0)).toBe(512 + Math.ceil(3_500_000 / 512) * 512 + 1024);
  });
});

describe("tar writer refuses", () => {
  const base = (): FsEntry[] => [{ path: "etc", type: "dir", mode: 0o755, uid: 0, gid: 0 }];
  const f = (p: string): FsEntry => ({ path: p, type: "file", mode: 0o644, uid: 0, gid: 0, content: lyingContent(0, 0) });
  const cases: Array<[string, FsEntry[], RegExp]> = [
    ["a duplicate path", [...base(), f("etc/a"), f("etc/a")], /duplicate entry "etc\/a"/],
    ["a missing parent", [...base(), f("var/log/x")], /parent directory of "var\/log" is missing|parent directory of "var\/log\/x" is missing/],
    ["a path with ..", [...base(), f("etc/../x")], /contains "\.\."/],
    ["an absolute path", [...base(), f("/etc/passwd")], /is absolute/],
    ["a ./ path", [...base(), f("./etc/x")], /not normalised/],
    ["a file under a symlink", [{ path: "lib", type: "symlink", mode: 0o777, uid: 0, gid: 0, linkname: "/etc" }, f("lib/x")], /inside "lib", which is a symlink/],
    ["a hard link to an absent path", [...base(), { path: "etc/l", type: "hardlink", mode: 0o644, uid: 0, gid: 0, linkname: "etc/none" }], /not in the layer/],
    ["a hard link to a directory", [...base(), { path: "etc/l", type: "hardlink", mode: 0o644, uid: 0, gid: 0, linkname: "etc" }], /points to a directory/],
    ["a hard link escaping with ..", [...base(), { path: "etc/l", type: "hardlink", mode: 0o644, uid: 0, gid: 0, linkname: "../etc/passwd" }], /contains "\.\."/],
    ["a mode with file-type bits", [...base(), { ...f("etc/m"), mode: 0o100644 }], /invalid mode/],
  ];
  test.each(cases)("%s", (_what, entries, message) => {
    let caught: unknown;
    try {
      planTar(entries);
    } catch (err) {
      caught = err;
    }
    expect(isKilnError(caught)).toBe(true);
    expect((caught as Error).message).toMatch(message);
  });

  test("a missing parent is taken from the ancestor lookup, with its real metadata", async () => {
    const tree = new Map<string, FsEntry>([
      ["var", { path: "var", type: "dir", mode: 0o755, uid: 0, gid: 0 }],
      ["var/mail", { path: "var/mail", type: "dir", mode: 0o2775, uid: 0, gid: 8 }],
    ]);
    const plan = planTar([f("var/mail/root")], { ancestors: (p) => tree.get(p) });
    expect(plan.map((t) => [t.path, t.entry.mode, t.entry.gid])).toEqual([
      ["var", 0o755, 0],
      ["var/mail", 0o2775, 8],
      ["var/mail/root", 0o644, 0],
    ]);
  });

  test.each([
    ["fewer", 10, 4, /has 4 bytes, but 10 were declared/],
    ["more", 10, 11, /longer than its declared 10 bytes/],
  ] as const)("content that delivers %s bytes than declared, naming the path", async (_what, declared, actual, message) => {
    const entries: FsEntry[] = [...base(), { ...f("etc/liar"), content: lyingContent(declared, actual) }];
    await expect(collect(tarChunks(entries, { clock }))).rejects.toThrow(/"etc\/liar"/);
    await expect(collect(tarChunks(entries, { clock }))).rejects.toThrow(message);
  });

  test("a content ref that cannot even open names the path", async () => {
    const entries: FsEntry[] = [...base(), { ...f("etc/gone"), content: { size: 1, open: () => { throw new Error("ENOENT"); } } }];
    await expect(collect(tarChunks(entries, { clock }))).rejects.toThrow(/cannot open the content of "etc\/gone"/);
  });

  test("a content stream of Uint8Array chunks is accepted", async () => {
    const bytes = new Uint8Array([104, 105, 10]);
    const tar = await collect(tarChunks([{ ...f("hi"), content: { size: 3, open: () => Readable.from([bytes], { objectMode: true }) } }], { clock }));
    expect(tar.subarray(512, 515).toString()).toBe("hi\n");
  });

  test("a content stream error names the path and keeps the cause", async () => {
    const entries: FsEntry[] = [...base(), { ...f("etc/broken"), content: { size: 5, open: () => new Readable({ read() { this.destroy(new Error("disk on fire")); } }) } }];
    const err = await collect(tarChunks(entries, { clock })).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/cannot read the content of "etc\/broken"/);
    expect(((err as Error).cause as Error).message).toBe("disk on fire");
  });
});

describe("files read at once", () => {
  const file = (p: string, bytes: Buffer, delayMs = 0): FsEntry => ({
    path: p,
    type: "file",
    mode: 0o644,
    uid: 0,
    gid: 0,
    content: {
      size: bytes.length,
      open: () => Readable.from([bytes]),
      readSync: () => {
        // A read that takes its time, as one from a cold disk would.
        const until = performance.now() + delayMs;
        while (performance.now() < until);
        return bytes;
      },
    },
  });

  test("are written as a stream of them would be", async () => {
    const entries = Array.from({ length: 50 }, (_, i) => file(`f${String(i).padStart(2, "0")}`, Buffer.from(`content of ${i}\n`.repeat(i + 1))));
    const streamed = entries.map((e) => ({ ...e, content: { size: e.content!.size, open: e.content!.open } }));
    const tar = await tarBytes(entries);
    expect(tar.equals(await tarBytes(streamed))).toBe(true);
    expect((await readHeaders(tar)).map((h) => h.name)).toEqual(entries.map((e) => e.path));
  });

  test("a content that answers a different size than declared names the path", async () => {
    const bad = file("short", Buffer.from("abc"));
    const entries: FsEntry[] = [{ ...bad, content: { ...bad.content!, size: 5 } }];
    await expect(collect(tarChunks(entries, { clock }))).rejects.toThrow(/the content of "short" has 3 bytes, but 5 were declared/);
  });

  test("slow reads still let the event loop run while a chunk fills", async () => {
    // 300 reads of 1 ms, far less than a chunk: without a time budget, one unbroken 300 ms turn.
    const entries = Array.from({ length: 300 }, (_, i) => file(`slow${String(i).padStart(3, "0")}`, Buffer.from("x"), 1));
    let turns = 0;
    let ticking = true;
    const tick = (): void => {
      turns++;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    const tar = await tarBytes(entries);
    ticking = false;
    expect((await readHeaders(tar)).length).toBe(300);
    expect(turns).toBeGreaterThanOrEqual(5);
  });
});
