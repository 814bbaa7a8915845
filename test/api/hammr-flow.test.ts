/**
 * hammr's calls (spec: ../shared/uforge/hammr.md), made with plain HTTP in XML exactly as hammr
 * 3.8.13 makes them: every answer validates against uforge.xsd (the test server checks each XML
 * body with xmllint, as pyxb would refuse it), and every field hammr reads is present with the
 * type it expects (decoded with the schema's declarations).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decode, type RootValue } from "../../src/wire/index.js";
import { startTestServer, type TestServer } from "../helpers/api.js";

let server: TestServer;
const USER = "hammr";

beforeAll(async () => {
  server = await startTestServer();
  await server.createUser(USER);
});
afterAll(async () => server?.close());

/** One hammr call: XML in and out, the answer's root checked and decoded. */
async function call<R extends string>(method: "GET" | "POST" | "PUT" | "DELETE", url: string, root: R | undefined, options: { status?: number; payload?: string | Buffer; contentType?: string } = {}): Promise<RootValue<R>> {
  const res = await server.request({
    method,
    url: `/api/${url}`,
    user: USER,
    headers: { accept: "application/xml", ...(options.payload !== undefined ? { "content-type": options.contentType ?? "application/xml" } : {}) },
    ...(options.payload !== undefined ? { payload: options.payload } : {}),
  });
  expect(res.statusCode, `${method} ${url}: ${res.body}`).toBe(options.status ?? (method === "POST" ? 201 : 200));
  if (root === undefined) return {} as RootValue<R>;
  expect(String(res.headers["content-type"])).toMatch(/xml/);
  return decode(root, res.body, "xml").value;
}

/** A field hammr reads without a guard: present, of the type it uses. */
function must(value: unknown, type: "string" | "number" | "boolean" | "date", what: string): void {
  expect(value, `${what} is missing`).not.toBeUndefined();
  if (type === "date") expect(value, what).toBeInstanceOf(Date);
  else expect(typeof value, what).toBe(type);
}

describe("os list", () => {
  it("lists the user's distributions and, for each, its OS profiles by name", async () => {
    const list = await call("GET", `users/${USER}/distros`, "distributions");
    expect(list.distributions?.length).toBeGreaterThan(0);
    for (const d of list.distributions!) {
      must(d.dbId, "number", "distribution.dbId");
      must(d.name, "string", "distribution.name");
      must(d.version, "string", "distribution.version");
      must(d.arch, "string", "distribution.arch");
      const profiles = await call("GET", `distributions/${d.dbId}/profiles`, "distribProfiles");
      expect(profiles.distribProfiles?.map((p) => p.name)).toEqual(["minbase", "none"]);
    }
  });
});

describe("bundle categories", () => {
  it("finds the user's first org, then its PROJECT categories (Kiln has none)", async () => {
    const orgs = await call("GET", `users/${USER}/orgs`, "orgs");
    const first = orgs.orgs?.[0];
    must(first?.dbId, "number", "orgs/org[0]/dbId");
    const categories = await call("GET", `orgs/${first!.dbId}/categories?query=${encodeURIComponent("type=='PROJECT'")}`, "categories");
    for (const c of categories.categories ?? []) must(c.name, "string", "category.name");
  });

  it("answers 404 for an org that is not there", async () => {
    await call("GET", "orgs/999/categories", undefined, { status: 404 });
  });
});

describe("quota list", () => {
  it("answers a quotas list whose entries, if any, carry type, nb and limit (Kiln counts nothing: empty)", async () => {
    const quotas = await call("GET", `users/${USER}/quotas`, "quotas");
    expect(quotas.quotas ?? []).toEqual([]);
  });
});
