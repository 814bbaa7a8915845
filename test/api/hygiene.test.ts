/**
 * What a local user of the machine and a careless administrator should not be able to do: read
 * the database (password hashes, encrypted secrets) or the data directory, and create a second
 * account whose login differs from another only in case.
 */
import { chmodSync, existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SQLITE_FILE } from "../../src/store/store.js";
import { errorMessage, startTestServer, type TestServer } from "../helpers/api.js";

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
  await server.createUser("alice");
});
afterAll(async () => server?.close());

const mode = (p: string): number => statSync(p).mode & 0o777;

describe("the data directory", () => {
  it("is 0700 and the SQLite database (with its WAL files) 0600", () => {
    const dir = server.config.dataDir;
    expect(mode(dir)).toBe(0o700);
    const db = path.join(dir, SQLITE_FILE);
    expect(mode(db)).toBe(0o600);
    for (const f of [`${db}-wal`, `${db}-shm`]) if (existsSync(f)) expect(mode(f), f).toBe(0o600);
  });

  it("is closed down at start when an older Kiln left it readable", async () => {
    const root = mkdtempSync(path.join(tmpdir(), "kiln-modes-"));
    try {
      const first = await startTestServer({ dataDir: root });
      await first.close();
      const dir = first.config.dataDir;
      chmodSync(dir, 0o755);
      chmodSync(path.join(dir, SQLITE_FILE), 0o644);
      const again = await startTestServer({ dataDir: root });
      await again.close();
      expect(mode(dir)).toBe(0o700);
      expect(mode(path.join(dir, SQLITE_FILE))).toBe(0o600);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe("logins", () => {
  it("are unique whatever their case", async () => {
    for (const login of ["ALICE", "Alice", "ROOT"]) {
      const res = await server.request({
        method: "POST",
        url: "/api/users",
        user: "root",
        headers: { "content-type": "application/json" },
        payload: JSON.stringify({ loginName: login, email: `${login}@example.com`, password: "a-long-password" }),
      });
      expect(res.statusCode, login).toBe(409);
      expect(errorMessage(res)).toMatch(/^a user (alice|root) already exists: logins are unique whatever their case$/);
    }
    const res = await server.request({ method: "POST", url: "/api/users", user: "root", headers: { "content-type": "application/json" }, payload: JSON.stringify({ loginName: "Alicia", password: "a-long-password" }) });
    expect(res.statusCode).toBe(201);
  });
});
