/**
 * The live status stream (`GET /api/users/{uid}/events`): a user's streams get the status
 * changes of their own generations and publications, in order, and nobody else's; the hub asks
 * the store once per look, however many streams are open; closing the server ends the streams.
 */
import http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StatusEvent } from "../../src/server/events.js";
import type { JobRow } from "../../src/store/types.js";
import { basic, jsonClient, startTestServer, type TestServer } from "../helpers/api.js";

let server: TestServer;
let base: string;

/** An open event stream, collecting its events. */
interface Stream {
  events: StatusEvent[];
  status: number;
  /** Resolves once `n` events have arrived. */
  until(n: number): Promise<void>;
  close(): void;
}

function openStream(login: string, as = login): Promise<Stream> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${base}/api/users/${login}/events`, { headers: { authorization: basic(as, `${as}-password`) } }, (res) => {
      const events: StatusEvent[] = [];
      const waiters: Array<{ n: number; resolve: () => void }> = [];
      let buffer = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        buffer += chunk;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = /^data: (.*)$/m.exec(block);
          if (/^event: status$/m.test(block) && data) events.push(JSON.parse(data[1]!) as StatusEvent);
        }
        for (const w of waiters.filter((w) => events.length >= w.n)) w.resolve();
      });
      res.on("error", () => undefined);
      resolve({
        events,
        status: res.statusCode ?? 0,
        until: (n) => (events.length >= n ? Promise.resolve() : new Promise((r) => waiters.push({ n, resolve: r }))),
        close: () => req.destroy(),
      });
    });
    req.on("error", reject);
  });
}

/** A generation job of `login`'s bundle 1 / template 1, made without running anything. */
async function newGeneration(login: string): Promise<{ job: JobRow; imageUri: string }> {
  const store = server.rt.deps.store;
  const user = (await store.users.getByLogin(login))!;
  const template = (await store.templates.list(user.id, (await store.bundles.list(user.id, {})).items[0]!.id, {})).items[0]!;
  return store.transaction(async (tx) => {
    const job = await tx.jobs.create({ kind: "generate", userId: user.id });
    const img = await tx.images.create({ userId: user.id, bundleId: template.bundleId, templateId: template.id, distributionId: template.distributionId, jobId: job.id, formatId: 1, compress: true, entrypoint: null, name: "hello", version: "1" });
    return { job, imageUri: `users/${login}/mysoftware/${template.bundleId}/templates/${template.id}/images/${img.id}` };
  });
}

beforeAll(async () => {
  server = await startTestServer();
  // Nothing runs: the test moves its jobs through their states itself.
  await server.rt.deps.jobs!.stop();
  for (const login of ["alice", "bob"]) {
    await server.createUser(login);
    const { api } = jsonClient(server, login);
    const bundle = await api<{ dbId: number }>("POST", `users/${login}/mysoftware`, { name: "hello", version: "1" });
    await api("POST", `users/${login}/mysoftware/${bundle.json.dbId}/templates`, { distribution: { uri: "distributions/1" } });
  }
  base = await server.rt.app.listen({ host: "127.0.0.1", port: 0 });
});
afterAll(async () => server?.close());

describe("the event stream", () => {
  it("brings a user's status changes to each of their streams, in order, and to nobody else", async () => {
    const alice = await Promise.all([openStream("alice"), openStream("alice"), openStream("alice")]);
    const bob = await openStream("bob");
    expect([...alice, bob].map((s) => s.status)).toEqual([200, 200, 200, 200]);

    const store = server.rt.deps.store;
    const { job, imageUri } = await newGeneration("alice");
    await alice[0]!.until(1);
    expect(await store.jobs.claimNext(["generate"])).toMatchObject({ id: job.id });
    await alice[0]!.until(2);
    await store.jobs.progress(job.id, { percentage: 42, message: "unpacking packages" });
    await alice[0]!.until(3);
    await store.jobs.finish(job.id, { state: "error", errorMessage: "package foo cannot be installed" });
    for (const s of alice) await s.until(4);

    for (const s of alice) {
      expect(s.events.map((e) => [e.state, e.percentage, e.message])).toEqual([
        ["queued", 0, "queued"],
        ["running", 0, "starting"],
        ["running", 42, "unpacking packages"],
        ["error", 42, "failed"],
      ]);
      expect(s.events.every((e) => e.uri === imageUri && e.imageUri === imageUri && e.kind === "generate" && e.job === job.id)).toBe(true);
      expect(s.events[3]!.errorMessage).toBe("package foo cannot be installed");
    }
    // Bob's own job reaches his stream; alice's never did.
    const mine = await newGeneration("bob");
    await bob.until(1);
    expect(bob.events.map((e) => e.job)).toEqual([mine.job.id]);
    await store.jobs.finish(mine.job.id, { state: "cancelled" });
    for (const s of [...alice, bob]) s.close();
  });

  it("asks the store once per look, however many streams watch", async () => {
    const store = server.rt.deps.store;
    const jobs = store.jobs as { listChangedSince: typeof store.jobs.listChangedSince };
    const original = jobs.listChangedSince;
    let queries = 0;
    jobs.listChangedSince = (...args) => {
      queries++;
      return original.apply(store.jobs, args);
    };
    try {
      const streams = await Promise.all(Array.from({ length: 20 }, () => openStream("alice")));
      const { job } = await newGeneration("alice");
      await streams[0]!.until(1);
      expect(await store.jobs.claimNext(["generate"])).toMatchObject({ id: job.id });
      for (let p = 10; p <= 50; p += 10) {
        await store.jobs.progress(job.id, { percentage: p, message: `step ${p}` });
        for (const s of streams) await s.until(Math.min(p / 10 + 2, 7));
      }
      const seen = streams[0]!.events.length;
      expect(seen).toBeGreaterThanOrEqual(6);
      // Each look serves all 20 streams: never more looks than changes sent (plus the idle ones).
      expect(queries).toBeLessThanOrEqual(seen * 2 + 4);
      for (const s of streams) expect(s.events.map((e) => e.percentage)).toEqual(streams[0]!.events.map((e) => e.percentage));
      for (const s of streams) s.close();
    } finally {
      jobs.listChangedSince = original;
    }
  });

  it("refuses another user's stream and a stream without credentials", async () => {
    expect((await openStream("bob", "alice")).status).toBe(404);
    const anonymous = await fetch(`${base}/api/users/alice/events`);
    expect(anonymous.status).toBe(401);
  });
});
