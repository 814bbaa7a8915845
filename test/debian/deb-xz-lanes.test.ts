import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDeb, XzLanes, type DebPackage } from "../../src/debian/deb.js";
import { isKilnError } from "../../src/domain/errors.js";
import { buildDeb, removeDir, tempDir } from "../fixtures/debs.js";

let dir: string;
beforeAll(() => {
  dir = tempDir("kiln-lanes-");
});
afterAll(() => removeDir(dir));

const text = (n: number): string => Array.from({ length: n }, (_, i) => `${i}:${(i * 7919) % 104729}\n`).join("");

async function files(deb: DebPackage, lanes?: XzLanes): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for await (const e of deb.dataEntries(lanes ? { lanes } : { xz: "native" })) {
    if (e.type !== "file") continue;
    const chunks: Buffer[] = [];
    for await (const c of e.body) chunks.push(c);
    out[e.name] = Buffer.concat(chunks).toString("utf8");
  }
  return out;
}

/** The xz programs this test process is running. */
function xzChildren(): number {
  const out = spawnSync("pgrep", ["-P", String(process.pid), "-x", "xz"], { encoding: "utf8" }).stdout.trim();
  return out === "" ? 0 : out.split("\n").length;
}

describe("xz lanes", () => {
  it("decode member after member on the same processes, byte for byte", async () => {
    const debs = await Promise.all(
      [0, 1, 2, 3, 4].map(async (i) =>
        openDeb(buildDeb({ name: `lane${i}`, files: [{ path: `usr/share/l/${i}.txt`, content: text(2000 + i * 30000) }, { path: "usr/share/l/empty", content: "" }] }, dir)),
      ),
    );
    // A member with nothing but the root directory.
    debs.push(await openDeb(buildDeb({ name: "lane-empty", files: [] }, dir)));
    const lanes = XzLanes.create(2)!;
    try {
      for (const deb of debs) {
        expect(deb.dataMember.uncompressedSize).toBeGreaterThan(0);
        expect(await files(deb, lanes)).toEqual(await files(deb));
      }
      // One after the other, they all went through one process.
      expect(xzChildren()).toBe(1);
      // Two at a time share the two lanes.
      const both = await Promise.all([files(debs[3]!, lanes), files(debs[4]!, lanes)]);
      expect(both).toEqual([await files(debs[3]!), await files(debs[4]!)]);
      expect(xzChildren()).toBe(2);
    } finally {
      lanes.close();
    }
    // Closed lanes end their programs.
    for (let i = 0; i < 100 && xzChildren() > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(xzChildren()).toBe(0);
  });

  it("fail the corrupt member, and go on with fresh processes for the next", async () => {
    const good = await openDeb(buildDeb({ name: "good", files: [{ path: "usr/share/g.txt", content: text(50000) }] }, dir));
    const badFile = buildDeb({ name: "bad", files: [{ path: "usr/share/b.txt", content: text(50000) }] }, dir);
    const bytes = readFileSync(badFile);
    const probe = await openDeb(badFile);
    const mid = probe.dataMember.offset + Math.floor(probe.dataMember.size / 2);
    for (let i = 0; i < 32; i++) bytes[mid + i] = bytes[mid + i]! ^ 0xa5;
    const corrupt = path.join(dir, "corrupt.deb");
    writeFileSync(corrupt, bytes);
    const bad = await openDeb(corrupt);

    const lanes = XzLanes.create(1)!;
    try {
      expect(Object.keys(await files(good, lanes))).toEqual(["./usr/share/g.txt"]);
      const err = await files(bad, lanes).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(isKilnError(err, "badRequest"), String(err)).toBe(true);
      expect(err!.message).toContain(corrupt);
      expect(err!.message).toMatch(/data\.tar\.xz is corrupt/);
      expect(await files(good, lanes)).toEqual(await files(good));
    } finally {
      lanes.close();
    }
  });

  it("drop a lane whose reader gives up, without disturbing the next member", async () => {
    const big = await openDeb(buildDeb({ name: "big", files: [{ path: "usr/share/a.txt", content: text(100000) }, { path: "usr/share/b.txt", content: text(100000) }] }, dir));
    const other = await openDeb(buildDeb({ name: "other", files: [{ path: "usr/share/o.txt", content: text(30000) }] }, dir));
    const lanes = XzLanes.create(1)!;
    try {
      for await (const e of big.dataEntries({ lanes })) {
        if (e.type === "file") break;
      }
      expect(await files(other, lanes)).toEqual(await files(other));
    } finally {
      lanes.close();
    }
  });
});
