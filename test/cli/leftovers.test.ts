/**
 * Leftovers of a crash are swept at start (issue 10, item 8): a server killed (SIGKILL) in the
 * middle of an upload leaves its staging file, and in the middle of a job its half-unpacked
 * package; the next start removes them — and leaves alone the temporary files of a writer that
 * still runs (another process sharing the data directory).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { basic, kilnYaml } from "../helpers/api.js";
import { ROOT } from "../helpers/global-setup.js";

const dir = mkdtempSync(path.join(tmpdir(), "kiln-leftovers-"));
writeFileSync(path.join(dir, "kiln.yaml"), kilnYaml());
const staging = path.join(dir, "data", "blobs", "tmp");
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

function start(): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [path.join(ROOT, "bin/kiln.js"), "serve"], {
    cwd: dir,
    env: { ...process.env, KILN_DATA_DIR: path.join(dir, "data"), KILN_PORT: "0", KILN_ADMIN_PASSWORD: "root-password", KILN_CONFIG: path.join(dir, "kiln.yaml") },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => {
    child.on("exit", (code) => reject(new Error(`kiln serve exited with ${code}:\n${out}`)));
    const poll = setInterval(() => {
      const m = /listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        clearInterval(poll);
        child.removeAllListeners("exit");
        resolve({ child, port: Number(m[1]) });
      }
    }, 50);
  });
}

async function call(port: number, method: string, url: string, user: string, body?: unknown): Promise<{ status: number; json: { uri?: string } }> {
  const res = await fetch(`http://127.0.0.1:${port}/api/${url}`, {
    method,
    headers: { authorization: basic(user, `${user}-password`), accept: "application/json", "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, json: (await res.json().catch(() => ({}))) as { uri?: string } };
}

const staged = (): string[] => (existsSync(staging) ? readdirSync(staging) : []);

describe("leftovers of a crash", () => {
  it("are swept at the next start, and a live writer's file is kept", async () => {
    const first = await start();
    const created = await call(first.port, "POST", "users", "root", { loginName: "alice", email: "alice@example.com", password: "alice-password" });
    expect(created.status).toBe(201);
    const bundle = await call(first.port, "POST", "users/alice/mysoftware", "alice", { name: "b", version: "1" });
    const artifact = await call(first.port, "POST", `${bundle.json.uri}/artifacts`, "alice", { name: "big.bin" });
    expect(artifact.status).toBe(201);

    // An upload that sends 4 MiB of a promised 64 MiB, then the server is killed.
    const req = http.request({
      host: "127.0.0.1",
      port: first.port,
      method: "POST",
      path: `/api/${artifact.json.uri}/bin/big.bin`,
      headers: { authorization: basic("alice", "alice-password"), "content-type": "application/octet-stream", "content-length": String(64 << 20) },
    });
    req.on("error", () => undefined);
    for (let i = 0; i < 64; i++) req.write(Buffer.alloc(64 << 10, 1));
    while (!staged().some((n) => statSync(path.join(staging, n)).size > 0)) await new Promise((r) => setTimeout(r, 50));
    const exited = new Promise((resolve) => first.child.once("exit", resolve));
    first.child.kill("SIGKILL");
    await exited;
    req.destroy();
    const left = staged();
    expect(left).toHaveLength(1);

    // A temporary file of a process that still runs (this one): its write may be live.
    const live = `${process.pid}-${left[0]!.split("-")[1]}-live-writer`;
    writeFileSync(path.join(staging, live), "in flight");
    // A package the killed server was unpacking (as rootfs/unpack.ts names its files), and one
    // a live process is unpacking.
    const unpacked = path.join(dir, "data", "cache", "unpacked", "0".repeat(64));
    mkdirSync(unpacked, { recursive: true });
    const dead = `content.tmp-${first.child.pid}-0123456789ab`;
    const running = `content.tmp-${process.pid}-0123456789ab`;
    for (const n of [dead, running]) writeFileSync(path.join(unpacked, n), "half");

    const second = await start();
    expect(staged()).toEqual([live]);
    expect(readdirSync(unpacked)).toEqual([running]);
    // The server works as before: the upload can be made again.
    const again = await fetch(`http://127.0.0.1:${second.port}/api/${artifact.json.uri}/bin/big.bin`, {
      method: "POST",
      headers: { authorization: basic("alice", "alice-password"), "content-type": "application/octet-stream" },
      body: Buffer.alloc(1 << 20, 2),
    });
    expect(again.status).toBe(201);
    expect(staged()).toEqual([live]);
    const stopped = new Promise((resolve) => second.child.once("exit", resolve));
    second.child.kill("SIGTERM");
    await stopped;
  }, 120_000);
});
