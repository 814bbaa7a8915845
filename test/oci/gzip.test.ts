import { writeFile } from "node:fs/promises";
import path from "node:path";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { isKilnError } from "../../src/domain/errors.js";
import { GZIP_MEMBER_SIZE, gzipFormat, gzipMembers } from "../../src/oci/gzip.js";
import { collect, patternBytes, run, scratch, sha256 } from "./fixtures.js";

let work: Awaited<ReturnType<typeof scratch>>;
beforeAll(async () => {
  work = await scratch();
});
afterAll(async () => work.cleanup());

/** `data` delivered in pieces of the given sizes, cycling. */
async function* pieces(data: Buffer, sizes: number[]): AsyncGenerator<Buffer> {
  for (let o = 0, i = 0; o < data.length; i++) {
    const n = sizes[i % sizes.length]!;
    yield data.subarray(o, o + n);
    o += n;
  }
}

describe("gzipMembers", () => {
  const data = patternBytes(2.5 * GZIP_MEMBER_SIZE + 123, 9);

  test("the cut points are offsets of the stream: any chunking of the input gives the same bytes, which gzip -d inflates", async () => {
    const aligned = await collect(gzipMembers(pieces(data, [GZIP_MEMBER_SIZE]), { level: 2 }));
    for (const sizes of [[1], [100_000, 7, 3_000_000], [GZIP_MEMBER_SIZE + 1], [data.length]]) {
      const input = sizes[0] === 1 ? pieces(data.subarray(0, 5000), sizes) : pieces(data, sizes);
      const out = await collect(gzipMembers(input, { level: 2, parallelism: sizes.length }));
      if (sizes[0] === 1) expect(gunzipSync(out).equals(data.subarray(0, 5000))).toBe(true);
      else expect(sha256(out), `pieces of ${sizes.join(",")}`).toBe(sha256(aligned));
    }
    const file = path.join(work.dir, "members.gz");
    await writeFile(file, aligned);
    await run("gzip", ["-t", file]);
    const { stdout } = await run("bash", ["-c", `gzip -dc '${file}' | sha256sum`]);
    expect(`sha256:${stdout.split(" ")[0]}`).toBe(sha256(data));
  });

  test("an empty stream is one empty member; level 0 stores", async () => {
    const empty = await collect(gzipMembers(pieces(Buffer.alloc(0), [1]), { level: 2 }));
    expect(empty.subarray(0, 2).toString("hex")).toBe("1f8b");
    expect(gunzipSync(empty).length).toBe(0);
    const stored = await collect(gzipMembers(pieces(data, [GZIP_MEMBER_SIZE]), { level: 0 }));
    expect(stored.length).toBeGreaterThan(data.length);
    expect(gunzipSync(stored).equals(data)).toBe(true);
  });

  test("the format names engine, version, level and member size; bad settings are refused by name", async () => {
    expect(gzipFormat(2)).toMatch(/^gzip\/2 libdeflate\/\d+\.\d+ members\/1048576$/);
    expect(gzipFormat(1)).not.toBe(gzipFormat(2));
    for (const [opts, msg] of [
      [{ level: 10 }, /gzip level 10 is not between 0 and 9/],
      [{ level: 1.5 }, /gzip level 1.5/],
      [{ level: 2, parallelism: 0 }, /gzip parallelism 0 is not a positive count/],
    ] as const) {
      const err = await collect(gzipMembers(pieces(data, [1000]), opts)).catch((e: unknown) => e);
      expect(isKilnError(err, "badRequest"), String(err)).toBe(true);
      expect((err as Error).message).toMatch(msg);
    }
  });
});
