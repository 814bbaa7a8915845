/**
 * Steps 1–5 of the UForge container flow (spec/uforge/README.md), once in XML and once in JSON:
 * bundle, artifact with its bytes, restriction rule, container template, its formats.
 */
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorMessage, startTestServer, xmlField, type TestServer } from "../helpers/api.js";
import { postgresTarget, sqliteTarget, type TargetDatabase } from "../helpers/databases.js";

const NS = 'xmlns:ns0="http://www.usharesoft.com/uforge"';

// The whole flow on both metadata stores: the default SQLite and PostgreSQL (KILN_DATABASE_URL).
describe.each([sqliteTarget, postgresTarget])("on $dialect", (target) => {
  let server: TestServer;
  let db: TargetDatabase;

  beforeAll(async () => {
    db = await target.create();
    server = await startTestServer(db.options.databaseUrl ? { databaseUrl: db.options.databaseUrl } : {});
    await server.createUser("alice");
  });
  afterAll(async () => {
    await server?.close();
    await db?.drop();
  });

  describe("the container flow in XML", () => {
    it("creates a bundle, an artifact with bytes, a rule, a template, and lists its formats", async () => {
      const xml = { "content-type": "application/xml" };
      // 1. A software bundle.
      let res = await server.request({
        method: "POST",
        url: "/api/users/alice/mysoftware",
        user: "alice",
        headers: xml,
        payload: `<ns0:mySoftware ${NS}><name>hello</name><version>1.0</version><description>says hello</description><defaultInstallLocation>/opt/hello</defaultInstallLocation></ns0:mySoftware>`,
      });
      expect(res.statusCode, res.body).toBe(201);
      const msid = Number(xmlField(res.body, "dbId"));
      expect(res.headers.location).toBe(`/api/users/alice/mysoftware/${msid}`);
      expect(res.body).toContain(`<uri>users/alice/mysoftware/${msid}</uri>`);
      expect(xmlField(res.body, "name")).toBe("hello");

      // 2. An artifact, then its bytes.
      res = await server.request({
        method: "POST",
        url: `/api/users/alice/mysoftware/${msid}/artifacts`,
        user: "alice",
        headers: xml,
        payload: `<ns0:softwareArtifact ${NS}><extract>true</extract><install>false</install><installLocation>/opt/hello</installLocation><name>hello.tar.gz</name><params>rights=0755</params></ns0:softwareArtifact>`,
      });
      expect(res.statusCode, res.body).toBe(201);
      const said = Number(xmlField(res.body, "dbId"));
      const bytes = Buffer.from("#!/bin/sh\necho hello\n".repeat(1000));
      res = await server.request({
        method: "POST",
        url: `/api/users/alice/mysoftware/${msid}/artifacts/${said}/bin/hello.tar.gz`,
        user: "alice",
        headers: { "content-type": "application/octet-stream" },
        payload: bytes,
      });
      expect(res.statusCode, res.body).toBe(201);
      expect(xmlField(res.body, "size")).toBe(String(bytes.length));
      expect(xmlField(res.body, "md5sum")).toBe(createHash("md5").update(bytes).digest("hex"));
      expect(xmlField(res.body, "sha256sum")).toBe(createHash("sha256").update(bytes).digest("hex"));
      expect(xmlField(res.body, "uploaded")).toBe("true");

      // The bytes come back, with credentials.
      res = await server.request({ method: "GET", url: `/api/users/alice/mysoftware/${msid}/artifacts/${said}/bin/hello.tar.gz`, user: "alice" });
      expect(res.statusCode).toBe(200);
      expect(res.rawPayload.equals(bytes)).toBe(true);

      // 3. A restriction rule: only Debian, only container formats named Docker.
      res = await server.request({ method: "GET", url: `/api/users/alice/mysoftware/${msid}`, user: "alice" });
      const restrictionUri = /<bundleRestriction>[\s\S]*?<uri>([^<]+)<\/uri>/.exec(res.body)![1]!;
      res = await server.request({
        method: "PUT",
        url: `/api/${restrictionUri}`,
        user: "alice",
        headers: xml,
        payload: `<ns0:bundleRestriction ${NS}><restrictionRule>Distribution#name=Debian &amp;&amp; TargetFormat#name=Docker</restrictionRule></ns0:bundleRestriction>`,
      });
      expect(res.statusCode, res.body).toBe(200);
      expect(xmlField(res.body, "restrictionRule")).toBe("Distribution#name=Debian &amp;&amp; TargetFormat#name=Docker");
      res = await server.request({ method: "GET", url: `/api/${restrictionUri}/distributions`, user: "alice" });
      expect(res.statusCode).toBe(200);
      expect(xmlField(res.body, "total")).toBe("1");

      // 4. A container template on Debian 12, named by arch, name and version.
      res = await server.request({
        method: "POST",
        url: `/api/users/alice/mysoftware/${msid}/templates`,
        user: "alice",
        headers: xml,
        payload: `<ns0:containerTemplate ${NS}><distribution><arch>x86_64</arch><name>Debian</name><version>12</version></distribution></ns0:containerTemplate>`,
      });
      expect(res.statusCode, res.body).toBe(201);
      const tid = Number(xmlField(res.body, "dbId"));
      expect(res.headers.location).toBe(`/api/users/alice/mysoftware/${msid}/templates/${tid}`);
      expect(res.body).toContain("<name>Debian</name>");

      // 5. The formats this template may produce: the rule leaves only Docker.
      res = await server.request({ method: "GET", url: `/api/users/alice/mysoftware/${msid}/templates/${tid}/formats`, user: "alice" });
      expect(res.statusCode).toBe(200);
      expect(xmlField(res.body, "total")).toBe("1");
      expect(res.body).toContain("<name>Docker</name>");
      expect(res.body).not.toContain("<name>OpenShift</name>");

      // The template lists under the bundle and reads back.
      res = await server.request({ method: "GET", url: `/api/users/alice/mysoftware/${msid}/templates`, user: "alice" });
      expect(xmlField(res.body, "total")).toBe("1");
      res = await server.request({ method: "GET", url: `/api/users/alice/mysoftware/${msid}/templates/${tid}`, user: "alice" });
      expect(res.statusCode).toBe(200);
      expect(res.headers.etag).toMatch(/^"[0-9a-f]{64}"$/);
    });
  });

  describe("the container flow in JSON", () => {
    it("does the same with JSON bodies and answers", async () => {
      const json = { "content-type": "application/json", accept: "application/json" };
      let res = await server.request({
        method: "POST",
        url: "/api/users/alice/mysoftware",
        user: "alice",
        headers: json,
        payload: JSON.stringify({ name: "hello-json", version: "2.0" }),
      });
      expect(res.statusCode, res.body).toBe(201);
      expect(res.headers["content-type"]).toMatch(/application\/json/);
      const bundle = res.json() as { dbId: number; uri: string; bundleRestriction: { uri: string } };
      expect(bundle.uri).toBe(`users/alice/mysoftware/${bundle.dbId}`);

      res = await server.request({
        method: "POST",
        url: `/api/${bundle.uri}/artifacts`,
        user: "alice",
        headers: json,
        payload: JSON.stringify({ name: "app", type: "folder", subSoftwareArtifacts: [{ name: "README", installLocation: "/opt/app" }] }),
      });
      expect(res.statusCode, res.body).toBe(201);
      const folder = res.json() as { dbId: number; type: string; subSoftwareArtifacts: Array<{ name: string; parentUri: string }> };
      expect(folder.type).toBe("folder");
      expect(folder.subSoftwareArtifacts).toHaveLength(1);
      expect(folder.subSoftwareArtifacts[0]!.name).toBe("README");
      expect(folder.subSoftwareArtifacts[0]!.parentUri).toBe(`${bundle.uri}/artifacts/${folder.dbId}`);

      res = await server.request({
        method: "PUT",
        url: `/api/${bundle.bundleRestriction.uri}`,
        user: "alice",
        headers: json,
        payload: JSON.stringify({ restrictionRule: "TargetFormat#type=container && TargetFormat#name!=Docker" }),
      });
      expect(res.statusCode, res.body).toBe(200);

      res = await server.request({ method: "GET", url: "/api/distributions", user: "alice", headers: { accept: "application/json" } });
      const dists = res.json() as { total: number; distributions: Array<{ uri: string; name: string }> };
      expect(dists.total).toBe(1);
      res = await server.request({
        method: "POST",
        url: `/api/${bundle.uri}/templates`,
        user: "alice",
        headers: json,
        payload: JSON.stringify({ distribution: { uri: dists.distributions[0]!.uri } }),
      });
      expect(res.statusCode, res.body).toBe(201);
      const template = res.json() as { uri: string; formatsUri: string; distribution: { name: string } };
      expect(template.distribution.name).toBe("Debian");

      res = await server.request({ method: "GET", url: `/api/${template.formatsUri}`, user: "alice", headers: { accept: "application/json" } });
      const formats = res.json() as { total: number; targetFormats: Array<{ name: string; type: string }> };
      expect(formats.targetFormats.map((f) => f.name)).toEqual(["OpenShift"]);

      res = await server.request({ method: "DELETE", url: `/api/${template.uri}`, user: "alice" });
      expect(res.statusCode).toBe(204);
      res = await server.request({ method: "GET", url: `/api/${template.uri}`, user: "alice", headers: { accept: "application/json" } });
      expect(res.statusCode).toBe(404);
      expect(errorMessage(res)).toMatch(/no container template/);
    });
  });
});
