/**
 * A generation survives a restart of the server: the job that was running when the server stopped
 * is resumed by the next one and completes; meanwhile nothing half-written is downloadable.
 */
import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { tempDir } from "../fixtures/debs.js";
import { startTestServer, type TestServer } from "../helpers/api.js";

const dataDir = tempDir("kiln-restart-");
let server: TestServer | undefined;
afterAll(async () => {
  await server?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

async function json<T>(s: TestServer, method: "GET" | "POST" | "PUT" | "DELETE", url: string, body?: unknown): Promise<{ status: number; json: T }> {
  const res = await s.request({ method, url: `/api/${url}`, user: "alice", headers: { "content-type": "application/json", accept: "application/json" }, ...(body === undefined ? {} : { payload: JSON.stringify(body) }) });
  return { status: res.statusCode, json: (res.body ? res.json() : {}) as T };
}

describe("a restart in the middle of a build", () => {
  it("resumes the job, which then completes", async () => {
    server = await startTestServer({ dataDir });
    await server.createUser("alice");
    const b = await json<{ uri: string }>(server, "POST", "users/alice/mysoftware", { name: "restartable", version: "2.0" });
    const a = await json<{ uri: string }>(server, "POST", `${b.json.uri}/artifacts`, { name: "data.bin" });
    const up = await server.request({ method: "POST", url: `/api/${a.json.uri}/bin/data.bin`, user: "alice", headers: { "content-type": "application/octet-stream" }, payload: randomBytes(96 * 1024 * 1024) });
    expect(up.statusCode).toBe(201);
    const t = await json<{ uri: string }>(server, "POST", `${b.json.uri}/templates`, { distribution: { uri: "distributions/1" } });
    const gen = await json<{ uri: string; statusUri: string }>(server, "POST", `${t.json.uri}/images`, { targetFormat: { name: "Docker" }, compress: true, entrypoint: '["/bin/true"]' });
    expect(gen.status).toBe(201);
    // Wait until it is writing layers, then stop the server under it.
    for (;;) {
      const s = await json<{ message: string; complete: boolean }>(server, "GET", gen.json.statusUri);
      expect(s.json.complete).toBe(false);
      if (/layers/.test(s.json.message)) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await server.close();
    server = undefined;

    server = await startTestServer({ dataDir });
    const early = await server.request({ method: "GET", url: `/api/${gen.json.uri}/downloads`, user: "alice" });
    expect([409, 200]).toContain(early.statusCode); // never a partial file
    let status: { complete: boolean; error: boolean; errorMessage?: string; percentage: number };
    for (;;) {
      status = (await json<typeof status>(server, "GET", gen.json.statusUri)).json;
      if (status.complete || status.error) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(status.errorMessage ?? "").toBe("");
    expect(status).toMatchObject({ complete: true, percentage: 100 });
    const job = await server.rt.deps.store.jobs.get((await server.rt.deps.store.images.getById(Number(gen.json.uri.split("/").pop())))!.jobId);
    expect(job!.attempts).toBe(2);
    const dl = await server.request({ method: "GET", url: `/api/${gen.json.uri}/downloads`, user: "alice" });
    expect(dl.statusCode).toBe(200);
    expect(dl.rawPayload.length).toBeGreaterThan(96 * 1024 * 1024);
  }, 300_000);
});
