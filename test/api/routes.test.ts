/**
 * The endpoint table drives the router: every row of endpoints.tsv in the foundation's
 * categories has a handler and a route.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadEndpoints } from "../../src/server/endpoints.js";
import { startTestServer, type TestServer } from "../helpers/api.js";

const FOUNDATION = ["User", "API Key", "User Software Library", "User Cloud Account", "User Target Platforms and Formats", "OS", "User OS", "UForge Platform"];
const CONTAINER_OPS = ["containerTemplate_create", "containerTemplate_get", "containerTemplate_getAll", "containerTemplate_delete", "containerTemplateTargetFormat_getAll"];

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => server?.close());

describe("routes", () => {
  const endpoints = loadEndpoints();
  const wanted = endpoints.filter((e) => FOUNDATION.includes(e.category) || CONTAINER_OPS.includes(e.operationId));

  it("reads all 66 endpoints", () => {
    expect(endpoints).toHaveLength(66);
  });

  it.each(wanted.map((e) => [e.operationId, e] as const))("serves %s", async (_id, e) => {
    const url = e.route.replace(/:(\w+)/g, (_m, name: string) => (name === "uid" ? "root" : name === "fileName" ? "f.bin" : "1"));
    expect(server.rt.app.hasRoute({ method: e.method, url: e.route })).toBe(true);
    const res = await server.request({ method: e.method, url, user: "root", headers: { "content-type": "application/xml" }, payload: e.method === "GET" || e.method === "DELETE" ? undefined : "<x/>" });
    // Whatever the answer, it is the endpoint's own (not the router's "no endpoint").
    expect(res.body).not.toMatch(/no endpoint/);
    expect(res.statusCode).toBeLessThan(500);
  });
});
