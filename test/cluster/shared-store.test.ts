/**
 * Two API processes on one PostgreSQL database, as behind a load balancer: what one changes, the
 * other answers at once — a password changed or an account disabled through one stops working
 * on the other, an object updated through one is read updated on the other. (Each process once
 * kept logins and answers until its own next write.)
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../helpers/api.js";
import { postgresTarget, type TargetDatabase } from "../helpers/databases.js";

const JSON_TYPE = { "content-type": "application/json", accept: "application/json" };
let db: TargetDatabase;
let a: TestServer;
let b: TestServer;

beforeAll(async () => {
  db = await postgresTarget.create();
  const env = { KILN_SECRET_KEY: "shared-store-test-secret" };
  a = await startTestServer({ databaseUrl: db.options.databaseUrl!, env });
  b = await startTestServer({ databaseUrl: db.options.databaseUrl!, env });
  await a.createUser("alice", "alice-first-password");
});
afterAll(async () => {
  await a?.close();
  await b?.close();
  await db?.drop();
});

describe("two API processes on one PostgreSQL database", () => {
  it("a bundle renamed through one is read renamed through the other", async () => {
    const created = await a.request({ method: "POST", url: "/api/users/alice/mysoftware", user: "alice", password: "alice-first-password", headers: JSON_TYPE, payload: JSON.stringify({ name: "before", version: "1" }) });
    expect(created.statusCode).toBe(201);
    const url = `/api/${(created.json() as { uri: string }).uri}`;
    const read = async (): Promise<string> => {
      const res = await b.request({ method: "GET", url, user: "alice", password: "alice-first-password", headers: { accept: "application/json" } });
      expect(res.statusCode).toBe(200);
      return (res.json() as { name: string }).name;
    };
    expect(await read()).toBe("before");
    expect(await read()).toBe("before");
    const renamed = await a.request({ method: "PUT", url, user: "alice", password: "alice-first-password", headers: JSON_TYPE, payload: JSON.stringify({ name: "after", version: "1" }) });
    expect(renamed.statusCode).toBe(200);
    expect(await read()).toBe("after");
  });

  it("a password changed through one no longer opens the other; a disabled account neither", async () => {
    const me = (server: TestServer, password: string) => server.request({ method: "GET", url: "/api/users/alice", user: "alice", password, headers: { accept: "application/json" } });
    expect((await me(b, "alice-first-password")).statusCode).toBe(200);
    const changed = await a.request({ method: "PUT", url: "/api/users/alice", user: "alice", password: "alice-first-password", headers: JSON_TYPE, payload: JSON.stringify({ loginName: "alice", email: "alice@example.com", password: "alice-second-password" }) });
    expect(changed.statusCode).toBe(200);
    expect((await me(b, "alice-first-password")).statusCode).toBe(401);
    expect((await me(b, "alice-second-password")).statusCode).toBe(200);
    const disabled = await a.request({ method: "PUT", url: "/api/users/alice", user: "root", headers: JSON_TYPE, payload: JSON.stringify({ loginName: "alice", email: "alice@example.com", active: false }) });
    expect(disabled.statusCode).toBe(200);
    expect((await me(b, "alice-second-password")).statusCode).toBe(401);
  });
});
