/**
 * The console, end to end, in Debian's Chromium: the whole container flow by role and name, as a
 * person would do it — sign in (and fail to), create a bundle, upload a file and an archive that
 * is extracted, write a restriction rule, create a template, generate an image and watch it
 * complete without reloading, download it (the same bytes the API serves), publish it to a real
 * registry, cancel a running generation, browse every image and an image's packages, and sign
 * out. Kiln runs on loopback over a local Debian mirror served over HTTP; the registry is
 * Debian's docker-registry.
 *
 * Every step fails on a console error, an uncaught exception or a 5xx answer; every page passes
 * axe-core with no serious violation; no 401 the console receives carries a Basic challenge. The
 * README's screenshots come from here (written to $KILN_SCREENSHOTS when set).
 */
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import type { Locator, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { compressBytes, buildDeb, makeTar, removeDir, tempDir } from "../fixtures/debs.js";
import { accessibilityViolations, launchBrowser, watchPage, type TestBrowser, type WatchedPage } from "../helpers/browser.js";
import { basic, kilnYaml, startTestServer, type TestServer } from "../helpers/api.js";
import { MIRROR_DIR } from "../helpers/global-setup.js";
import { MirrorServer } from "../helpers/mirror-server.js";
import { startRegistry, type TestRegistry } from "../helpers/registry.js";

const SCREENSHOTS = process.env.KILN_SCREENSHOTS;
const LONG = 180_000;

let mirror: MirrorServer;
let registry: TestRegistry;
let server: TestServer;
let base: string;
let browser: TestBrowser;
let w: WatchedPage;
let page: Page;
let files: string;

async function shot(name: string): Promise<void> {
  if (!SCREENSHOTS) return;
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOTS, name), fullPage: false });
}

async function expectAccessible(what: string): Promise<void> {
  const violations = await accessibilityViolations(page);
  expect(violations, `axe-core on ${what}`).toEqual([]);
}

/** Waits for a dialog to close; if it stays open, fails with what it says (its error). */
async function closes(dialog: Locator): Promise<void> {
  try {
    await dialog.waitFor({ state: "detached", timeout: 15_000 });
  } catch {
    throw new Error(`the dialog stayed open: ${await dialog.textContent()}`);
  }
}

/** Waits until the job shown in `item` ends; its outcome as the page says it. */
async function outcome(item: Locator): Promise<string> {
  const ended = item.locator(".status-complete, .status-error, .status-cancelled").first();
  await ended.waitFor({ timeout: LONG });
  return (await ended.textContent()) ?? "";
}

/** The list item of an image, by its heading. */
function revision(n: number): Locator {
  return page.getByRole("list", { name: "Images of the template" }).getByRole("listitem").filter({ has: page.getByRole("heading", { name: `Revision ${n}` }) });
}

async function api(method: string, url: string, body?: unknown): Promise<Response> {
  return fetch(`${base}/api/${url}`, {
    method,
    headers: { authorization: basic("alice", "alice-password"), accept: "application/json", "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

beforeAll(async () => {
  mirror = await MirrorServer.start(MIRROR_DIR);
  registry = await startRegistry({ auth: "htpasswd", users: { pusher: "push-secret" } });
  server = await startTestServer({ yaml: kilnYaml(mirror.url), env: { KILN_BUILD_CONCURRENCY: "2", KILN_PUBLISH_ALLOW: "127.0.0.1" } });
  await server.createUser("alice");
  base = await server.rt.app.listen({ host: "127.0.0.1", port: 0 });
  browser = await launchBrowser();
  page = await browser.context.newPage();
  w = watchPage(page);
  files = tempDir("kiln-console-");
}, LONG);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  await registry?.stop();
  await mirror?.close();
  if (files) removeDir(files);
});

afterEach(() => {
  // Taken out as they are checked, so that one step's problem is reported by that step only.
  expect(w.problems.splice(0)).toEqual([]);
  expect(w.unauthorized.filter((u) => u.challenge !== undefined)).toEqual([]);
});

describe("the console", () => {
  it("signs in: a wrong password is an alert on the form, the right one opens the library", async () => {
    await page.goto(`${base}/`);
    expect(await page.title()).toContain("Kiln");
    await page.getByRole("heading", { name: "Sign in to Kiln" }).waitFor();
    await expectAccessible("the sign-in form");

    await page.getByRole("textbox", { name: "User name" }).fill("alice");
    await page.getByLabel("Password").fill("not-her-password");
    await w.expecting([401], async () => {
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.getByRole("alert").waitFor();
    });
    expect(await page.getByRole("alert").textContent()).toContain("wrong user name or password");
    await page.getByRole("button", { name: "Sign in" }).waitFor();
    expect(w.unauthorized.length).toBe(1);

    await page.getByLabel("Password").fill("alice-password");
    await page.getByRole("button", { name: "Sign in" }).click();
    const nav = page.getByRole("navigation", { name: "Main" });
    for (const name of ["Software library", "Images", "Cloud accounts"]) await nav.getByRole("link", { name }).waitFor();
    await page.getByRole("button", { name: "Sign out" }).waitFor();
    await page.getByRole("heading", { name: "Software library" }).waitFor();

    const cookie = (await browser.context.cookies(base)).find((c) => c.name === "kiln_session");
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: "Strict" });
  }, LONG);

  it("creates a bundle", async () => {
    await page.getByRole("button", { name: "New bundle" }).click();
    const dialog = page.getByRole("dialog", { name: "New bundle" });
    await dialog.getByRole("textbox", { name: "Name" }).fill("hello");
    await dialog.getByRole("textbox", { name: "Version" }).fill("1.0");
    await expectAccessible("the New bundle dialog");
    await dialog.getByRole("button", { name: "Create bundle" }).click();
    await page.getByRole("heading", { name: /hello/ }).waitFor();
    await page.getByRole("link", { name: "Software library" }).first().click();
    await page.getByRole("link", { name: "hello", exact: true }).click();
    await page.getByRole("heading", { name: "Container templates" }).waitFor();
  }, LONG);

  it("uploads two files at once; the archive is extracted", async () => {
    const readme = path.join(files, "README.txt");
    const archive = path.join(files, "hello.tar.gz");
    const { writeFileSync } = await import("node:fs");
    writeFileSync(readme, "Hello from the console test\n");
    const tar = await makeTar([
      { name: "bin/", type: "directory", mode: 0o755 },
      { name: "bin/hello", content: "#!/bin/sh\necho hello from kiln\n", mode: 0o755 },
    ]);
    writeFileSync(archive, compressBytes(tar, "gzip"));

    await page.getByLabel("Upload file").setInputFiles([readme, archive]);
    const tree = page.getByRole("list", { name: "Files of the bundle" });
    await tree.getByText("README.txt", { exact: true }).waitFor();
    await tree.getByText("hello.tar.gz", { exact: true }).waitFor();
    await page.getByRole("list", { name: "Uploads" }).waitFor({ state: "detached" });
    await expectAccessible("the bundle page");

    const listed = (await (await api("GET", "users/alice/mysoftware/1/artifacts")).json()) as { softwareArtifacts: Array<{ name: string; extract: boolean; size: number; uploaded: boolean }> };
    const byName = Object.fromEntries(listed.softwareArtifacts.map((a) => [a.name, a]));
    expect(byName["hello.tar.gz"]).toMatchObject({ extract: true, uploaded: true, size: readFileSync(archive).length });
    expect(byName["README.txt"]).toMatchObject({ extract: false, uploaded: true, size: readFileSync(readme).length });
  }, LONG);

  it("uploads a file dropped on the upload area", async () => {
    // What a drag from the desktop delivers: a drop event whose DataTransfer holds the files.
    const dropped = await page.evaluateHandle(() => {
      const transfer = new DataTransfer();
      transfer.items.add(new File(["dropped from the desktop\n"], "dropped.txt", { type: "text/plain" }));
      return transfer;
    });
    const zone = page.locator(".dropzone");
    await zone.dispatchEvent("dragover", { dataTransfer: dropped });
    await zone.dispatchEvent("drop", { dataTransfer: dropped });
    await page.getByRole("list", { name: "Files of the bundle" }).getByText("dropped.txt", { exact: true }).waitFor();
    await page.getByRole("list", { name: "Uploads" }).waitFor({ state: "detached" });
    const listed = (await (await api("GET", "users/alice/mysoftware/1/artifacts")).json()) as { softwareArtifacts: Array<{ name: string; size: number; uploaded: boolean }> };
    expect(listed.softwareArtifacts.find((a) => a.name === "dropped.txt")).toMatchObject({ uploaded: true, size: "dropped from the desktop\n".length });
  }, LONG);

  it("checks the restriction rule as it is typed and shows the error at its position", async () => {
    const rule = page.getByRole("textbox", { name: "Restriction rule" });
    await rule.fill("Distribution#name=Debian && TargetFormat#");
    const alert = page.locator("#rule-error");
    await alert.waitFor();
    expect(await alert.getAttribute("role")).toBe("alert");
    expect(await alert.textContent()).toMatch(/position \d+/);
    expect(await alert.locator("mark").count()).toBe(1);
    expect(await page.getByRole("button", { name: "Save rule" }).isDisabled()).toBe(true);
    await rule.fill("Distribution#name=Debian && TargetFormat#type=container");
    await alert.waitFor({ state: "detached" });
    await page.getByRole("button", { name: "Save rule" }).click();
    await page.getByText("Saved. Allowed on: Debian 12 x86_64.").waitFor();
    const bundle = (await (await api("GET", "users/alice/mysoftware/1")).json()) as { bundleRestriction: { restrictionRule: string } };
    expect(bundle.bundleRestriction.restrictionRule).toBe("Distribution#name=Debian && TargetFormat#type=container");
  }, LONG);

  it("creates a template, listed by its distribution", async () => {
    await page.getByRole("button", { name: "New template" }).click();
    const dialog = page.getByRole("dialog", { name: "New template" });
    await dialog.getByRole("combobox", { name: "Distribution" }).selectOption({ label: "Debian 12 x86_64" });
    await dialog.getByRole("button", { name: "Create template" }).click();
    await page.getByRole("heading", { name: /hello on Debian 12 x86_64/ }).waitFor();
    await page.getByRole("navigation", { name: "Breadcrumb" }).getByRole("link", { name: "hello" }).click();
    await page.getByRole("link", { name: "Debian 12 x86_64" }).click();
    await page.getByRole("button", { name: "Generate image" }).waitFor();
  }, LONG);

  it("generates an image and sees it run and complete live, without reloading", async () => {
    const loads: string[] = [];
    page.on("framenavigated", (f) => f === page.mainFrame() && loads.push(f.url()));
    // Slow enough that the running phase is on screen for a while.
    mirror.debDelayMs = 40;

    await page.getByRole("button", { name: "Generate image" }).click();
    const dialog = page.getByRole("dialog", { name: "Generate image" });
    const format = dialog.getByRole("combobox", { name: "Format" });
    await format.locator("option").first().waitFor({ state: "attached" });
    expect(await format.locator("option").allTextContents()).toEqual(["Docker", "OpenShift"]);
    expect(await dialog.getByRole("checkbox", { name: "Compress" }).isChecked()).toBe(true);
    const entrypoint = dialog.getByRole("textbox", { name: "Entrypoint" });
    await entrypoint.fill('["/opt/hello/bin/hello"');
    await dialog.getByText(/must be a JSON array of strings/).waitFor();
    expect(await dialog.getByRole("button", { name: "Generate" }).isDisabled()).toBe(true);
    await entrypoint.fill('["/opt/hello/bin/hello"]');
    await expectAccessible("the Generate image dialog");
    await dialog.getByRole("button", { name: "Generate" }).click();
    await closes(dialog);

    const item = revision(1);
    await item.getByRole("progressbar").waitFor();
    await item.getByText(/\d+% · /).waitFor();
    await shot("console-generating.png");
    await expectAccessible("the template page with a running generation");
    expect(await outcome(item)).toBe("complete");
    mirror.debDelayMs = 0;
    expect(loads).toEqual([]);
    expect(w.eventStreams).toContain(`${base}/api/users/alice/events`);
  }, LONG);

  it("downloads the image: the file is the one the API serves", async () => {
    const link = revision(1).getByRole("link", { name: "Download" });
    const href = await link.getAttribute("href");
    expect(href).toMatch(/^\/api\/users\/alice\/mysoftware\/1\/templates\/1\/images\/1\/downloads\/[^?]+\.tar\.gz$/);
    const [download] = await Promise.all([page.waitForEvent("download"), link.click()]);
    const saved = await download.path();
    const fromBrowser = createHash("sha256").update(readFileSync(saved)).digest("hex");
    const fromApi = await api("GET", href!.slice("/api/".length));
    expect(fromApi.status).toBe(200);
    const apiBytes = Buffer.from(await fromApi.arrayBuffer());
    expect(fromBrowser).toBe(createHash("sha256").update(apiBytes).digest("hex"));
    expect(download.suggestedFilename()).toMatch(/\.tar\.gz$/);
  }, LONG);

  it("adds a cloud account (an API error is shown in the form) and publishes to the local registry", async () => {
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Cloud accounts" }).click();
    await page.getByRole("heading", { name: "Cloud accounts", level: 1 }).waitFor();
    await page.getByRole("combobox", { name: "Type" }).selectOption({ label: "Docker registry" });
    await page.getByRole("textbox", { name: "Name" }).fill("local");
    await page.getByRole("textbox", { name: "Registry URL" }).fill("ftp://nowhere.example");
    await page.getByRole("textbox", { name: "Login" }).fill("pusher");
    await page.getByLabel("Password").fill("push-secret");
    await w.expecting([400], async () => {
      await page.getByRole("button", { name: "Create account" }).click();
      await page.getByRole("alert").getByText(/must be an http:\/\/ or https:\/\/ URL/).waitFor();
    });
    await page.getByRole("textbox", { name: "Registry URL" }).fill(registry.url);
    await page.getByRole("button", { name: "Create account" }).click();
    await page.getByRole("cell", { name: "local", exact: true }).waitFor();
    await page.getByRole("cell", { name: registry.url }).waitFor();
    expect(await page.content()).not.toContain("push-secret");
    await expectAccessible("the cloud accounts page");

    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Software library" }).click();
    await page.getByRole("link", { name: "hello", exact: true }).click();
    await page.getByRole("link", { name: "Debian 12 x86_64" }).click();
    await revision(1).getByRole("button", { name: "Publish" }).click();
    const dialog = page.getByRole("dialog", { name: "Publish revision 1" });
    const accounts = dialog.getByRole("combobox", { name: "Account" }).locator("option");
    await accounts.first().waitFor({ state: "attached" });
    expect(await accounts.allTextContents()).toEqual([`local (${registry.url})`]);
    await dialog.getByRole("textbox", { name: "Namespace" }).fill("team");
    await dialog.getByRole("textbox", { name: "Repository" }).fill("hello");
    await dialog.getByRole("textbox", { name: "Tag" }).fill("1.0");
    await expectAccessible("the Publish dialog");
    await dialog.getByRole("button", { name: "Publish" }).click();
    await closes(dialog);
    const publication = revision(1).getByRole("list", { name: "Publications of revision 1" }).getByRole("listitem");
    await publication.getByText(`${registry.host}/team/hello:1.0`).waitFor({ timeout: LONG });
    expect(await outcome(publication)).toBe("complete");
    await shot("console-template.png");

    const manifest = await fetch(`${registry.url}/v2/team/hello/manifests/1.0`, {
      headers: { authorization: basic("pusher", "push-secret"), accept: "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json" },
    });
    expect(manifest.status).toBe(200);
  }, LONG);

  it("cancels a running generation", async () => {
    // A package that needs jq: the generation must fetch debs it has never fetched, and the
    // mirror holds them back until the test ends.
    const deb = buildDeb({ name: "hello-jq", version: "1.0", arch: "all", depends: "jq", files: [{ path: "usr/share/doc/hello-jq/README", content: "needs jq\n" }] }, files);
    await page.getByRole("navigation", { name: "Breadcrumb" }).getByRole("link", { name: "hello" }).click();
    await page.getByLabel("Upload file").setInputFiles(deb);
    await page.getByRole("list", { name: "Files of the bundle" }).getByText(path.basename(deb), { exact: true }).waitFor();
    await page.getByRole("link", { name: "Debian 12 x86_64" }).click();

    // Held back until the test ends: a cancellation that had to wait for them never ends.
    mirror.holdDebs = "headers";
    try {
      await page.getByRole("button", { name: "Generate image" }).click();
      const dialog = page.getByRole("dialog", { name: "Generate image" });
      await dialog.getByRole("button", { name: "Generate" }).click();
      await closes(dialog);
      const item = revision(2);
      await item.getByText(/\d+% · (?!queued)/).waitFor({ timeout: LONG });
      await item.getByRole("button", { name: "Cancel" }).click();
      expect(await outcome(item)).toBe("cancelled");
      expect(await item.getByRole("button", { name: "Cancel" }).count()).toBe(0);
      expect(mirror.holdDebs).toBe("headers");
    } finally {
      mirror.release();
    }
    const status = (await (await api("GET", "users/alice/mysoftware/1/templates/1/images/2/status")).json()) as { cancelled: boolean };
    expect(status.cancelled).toBe(true);
  }, LONG);

  it("lists every image newest first, and shows an image's packages", async () => {
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Images" }).click();
    const images = page.getByRole("list", { name: "Images" });
    const headings = images.getByRole("heading");
    await headings.first().waitFor();
    expect((await headings.allTextContents()).map((h) => h.replace(/\s+Debian.*$/, ""))).toEqual(["hello 1.0 · revision 2", "hello 1.0 · revision 1"]);
    await images.getByText("cancelled", { exact: true }).waitFor();
    await expectAccessible("the images page");
    await shot("console-images.png");
    await images.getByRole("link", { name: "hello 1.0 · revision 1" }).click();
    await page.getByRole("heading", { name: "Packages" }).waitFor();
    const table = page.getByRole("table");
    await table.getByRole("cell", { name: "base-files", exact: true }).waitFor();
    await table.getByRole("cell", { name: "dpkg", exact: true }).waitFor();
    await expectAccessible("an image's page");
  }, LONG);

  it("fits a phone's width", async () => {
    await page.setViewportSize({ width: 375, height: 740 });
    try {
      for (const to of ["/library", "/library/1", "/library/1/templates/1", "/images", "/accounts"]) {
        await page.goto(`${base}${to}`);
        await page.getByRole("heading", { level: 1 }).waitFor();
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        expect(overflow, `horizontal overflow on ${to}`).toBeLessThanOrEqual(0);
      }
      await expectAccessible("the accounts page on a phone");
    } finally {
      await page.setViewportSize({ width: 1280, height: 860 });
    }
  }, LONG);

  it("works from the keyboard alone, with the focus always visible", async () => {
    await page.goto(`${base}/library`);
    await page.getByRole("heading", { name: "Software library", level: 1 }).waitFor();
    /** Presses Tab until the focus is on the control named `name`; checks that focus is visible. */
    const tabTo = async (name: string): Promise<void> => {
      for (let i = 0; i < 60; i++) {
        await page.keyboard.press("Tab");
        const focused = await page.evaluate(() => {
          const el = document.activeElement as HTMLElement | null;
          if (!el) return undefined;
          const label = el.getAttribute("aria-label") ?? el.textContent?.trim() ?? "";
          const style = getComputedStyle(el);
          return { label, outline: style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2 };
        });
        if (focused?.label === name) {
          expect(focused.outline, `visible focus on ${name}`).toBe(true);
          return;
        }
      }
      throw new Error(`Tab never reached "${name}"`);
    };
    await tabTo("New bundle");
    await page.keyboard.press("Enter");
    await page.getByRole("dialog", { name: "New bundle" }).waitFor();
    await page.keyboard.type("keyboard");
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: /keyboard/, level: 1 }).waitFor();
    await tabTo("New template");
    await page.keyboard.press("Enter");
    const newTemplate = page.getByRole("dialog", { name: "New template" });
    await newTemplate.getByRole("combobox", { name: "Distribution" }).locator("option").first().waitFor({ state: "attached" });
    await tabTo("Create template");
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: /keyboard on Debian 12 x86_64/, level: 1 }).waitFor();
    await tabTo("Generate image");
    await page.keyboard.press("Enter");
    const generate = page.getByRole("dialog", { name: "Generate image" });
    await generate.getByRole("combobox", { name: "Format" }).locator("option").first().waitFor({ state: "attached" });
    await tabTo("Generate");
    await page.keyboard.press("Enter");
    await closes(generate);
    expect(await outcome(revision(1))).toBe("complete");
    await tabTo("Images");
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "Images", level: 1 }).waitFor();
  }, LONG);

  it("signs out: the session ends on the server, and a reload shows the sign-in form", async () => {
    const cookie = (await browser.context.cookies(base)).find((c) => c.name === "kiln_session")!;
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByRole("button", { name: "Sign in" }).waitFor();
    await page.reload();
    await page.getByRole("heading", { name: "Sign in to Kiln" }).waitFor();
    await page.getByRole("textbox", { name: "User name" }).waitFor();
    // The old cookie opens nothing any more.
    const res = await fetch(`${base}/api/session`, { headers: { cookie: `kiln_session=${cookie.value}` } });
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toBeNull();
    const list = await fetch(`${base}/api/users/alice/mysoftware`, { headers: { cookie: `kiln_session=${cookie.value}` } });
    expect(list.status).toBe(401);
  });
});
