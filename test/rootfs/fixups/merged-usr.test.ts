import { readFileSync, readlinkSync, rmSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { isKilnError } from "../../../src/domain/errors.js";
import { mergedUsrFixup } from "../../../src/rootfs/fixups/merged-usr.js";
import { DirView, runFixups, syntheticContext } from "./dir-view.js";
import { tempTree } from "./synthetic.js";

const cleanup: string[] = [];
afterAll(() => {
  for (const d of cleanup) rmSync(d, { recursive: true, force: true });
});
function tree(nodes: Parameters<typeof tempTree>[0]): string {
  const t = tempTree(nodes);
  cleanup.push(t);
  return t;
}

describe("merged /usr", () => {
  test("creates the links in debootstrap's relative form, lib64 on amd64", async () => {
    const root = tree({ "usr/bin/bash": "x", etc: { dir: true } });
    await runFixups(root, [mergedUsrFixup()], syntheticContext());
    for (const d of ["bin", "sbin", "lib", "lib64"]) expect(readlinkSync(path.join(root, d))).toBe(`usr/${d}`);
    expect(new DirView(root).stat("lib64")?.type).toBe("dir");
    expect(new DirView(root).stat("bin/bash")?.type).toBe("file");
  });

  test("on other architectures, multilib links only where /usr has the directory", async () => {
    const root = tree({ "usr/lib32/ld.so.1": "x" });
    const r = await mergedUsrFixup().apply({ ...syntheticContext(), arch: "arm64", fs: new DirView(root) });
    expect(r.entries.filter((e) => e.type === "symlink").map((e) => e.path)).toEqual(["bin", "lib", "lib32", "sbin"]);
  });

  test("a tree already merged gets nothing; an absolute link is rewritten to the relative form", async () => {
    const done = tree({ bin: { link: "usr/bin" }, sbin: { link: "usr/sbin" }, lib: { link: "usr/lib" }, lib64: { link: "usr/lib64" }, "usr/bin": { dir: true }, "usr/sbin": { dir: true }, "usr/lib": { dir: true }, "usr/lib64": { dir: true } });
    expect((await mergedUsrFixup().apply({ ...syntheticContext(), fs: new DirView(done) })).entries).toEqual([]);
    const abs = tree({ bin: { link: "/usr/bin" }, "usr/bin": { dir: true } });
    const r = await mergedUsrFixup().apply({ ...syntheticContext(), fs: new DirView(abs) });
    expect(r.entries.find((e) => e.path === "bin")).toMatchObject({ type: "symlink", linkname: "usr/bin" });
  });

  test("a real /bin is merged into /usr/bin, as merge_usr does", async () => {
    const root = tree({ "bin/sh": { link: "dash" }, "bin/dash": "dash", "bin/sub/x": "x", "usr/bin/env": "env", "usr/bin/sub": { dir: true } });
    const r = await mergedUsrFixup().apply({ ...syntheticContext(), fs: new DirView(root) });
    expect(r.remove).toEqual(["bin/dash", "bin/sh", "bin/sub"]);
    await runFixups(root, [{ name: "r", replaces: "", apply: async () => r }], syntheticContext());
    expect(readlinkSync(path.join(root, "bin"))).toBe("usr/bin");
    expect(readlinkSync(path.join(root, "usr/bin/sh"))).toBe("dash");
    expect(readFileSync(path.join(root, "usr/bin/dash"), "utf8")).toBe("dash");
    expect(readFileSync(path.join(root, "bin/sub/x"), "utf8")).toBe("x");
    expect(readFileSync(path.join(root, "bin/env"), "utf8")).toBe("env");
  });

  test("refuses a clash, or an alias that points elsewhere", async () => {
    const clash = tree({ "bin/ls": "one", "usr/bin/ls": "two" });
    await expect(mergedUsrFixup().apply({ ...syntheticContext(), fs: new DirView(clash) })).rejects.toSatisfy((e: unknown) => isKilnError(e, "buildFailed") && /both exist/.test((e as Error).message));
    const elsewhere = tree({ bin: { link: "opt" }, opt: { dir: true } });
    await expect(mergedUsrFixup().apply({ ...syntheticContext(), fs: new DirView(elsewhere) })).rejects.toThrow(/links to opt, not to \/usr\/bin/);
  });
});
