/**
 * `kiln serve` as a user runs it (the compiled command, as `npm start` runs it): first start
 * creates root and prints its password once, the API answers, and SIGTERM shuts it down cleanly.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { kilnYaml } from "../helpers/api.js";
import { ROOT } from "../helpers/global-setup.js";

const dir = mkdtempSync(path.join(tmpdir(), "kiln-serve-"));
writeFileSync(path.join(dir, "kiln.yaml"), kilnYaml());
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Started {
  child: ChildProcess;
  port: number;
  output: () => string;
}

function start(): Promise<Started> {
  const child = spawn(process.execPath, [path.join(ROOT, "bin/kiln.js"), "serve"], {
    cwd: dir,
    env: { ...process.env, KILN_DATA_DIR: path.join(dir, "data"), KILN_PORT: "0", KILN_ADMIN_PASSWORD: "", KILN_CONFIG: "" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`kiln serve did not start:\n${out}`)), 20_000);
    child.on("exit", (code) => reject(new Error(`kiln serve exited with ${code}:\n${out}`)));
    const poll = setInterval(() => {
      const m = /listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        clearInterval(poll);
        clearTimeout(timer);
        child.removeAllListeners("exit");
        resolve({ child, port: Number(m[1]), output: () => out });
      }
    }, 50);
  });
}

function stop(s: Started): Promise<number | null> {
  return new Promise((resolve) => {
    s.child.once("exit", (code) => resolve(code));
    s.child.kill("SIGTERM");
  });
}

describe("kiln serve", () => {
  it("creates root once, serves the API, and stops cleanly on SIGTERM", async () => {
    const first = await start();
    const m = /administrator "root" with the password: (\S+)/.exec(first.output());
    expect(m, first.output()).not.toBeNull();
    const password = m![1]!;
    const auth = `Basic ${Buffer.from(`root:${password}`).toString("base64")}`;
    const status = await fetch(`http://127.0.0.1:${first.port}/api/status`);
    expect(status.status).toBe(200);
    expect(status.headers.get("x-request-id")).toBeTruthy();
    const me = await fetch(`http://127.0.0.1:${first.port}/api/users/root`, { headers: { authorization: auth, accept: "application/json" } });
    expect(me.status).toBe(200);
    expect(((await me.json()) as { admin: boolean }).admin).toBe(true);
    const t0 = Date.now();
    expect(await stop(first)).toBe(0);
    expect(Date.now() - t0).toBeLessThan(10_000);
    // Logs are structured JSON lines with request ids, and the password is not in them.
    const logLines = first.output().split("\n").filter((l) => l.startsWith("{"));
    expect(logLines.some((l) => (JSON.parse(l) as { requestId?: string }).requestId)).toBe(true);
    expect(logLines.join("\n")).not.toContain(password);

    const second = await start();
    expect(second.output()).not.toMatch(/with the password/);
    const again = await fetch(`http://127.0.0.1:${second.port}/api/users/root`, { headers: { authorization: auth } });
    expect(again.status).toBe(200);
    expect(await stop(second)).toBe(0);
  });
});
