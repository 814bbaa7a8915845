/**
 * A real browser for the console's tests: Debian's Chromium, driven by playwright-core, with a
 * fresh profile per launch. A watched page records every console error, uncaught exception and
 * 5xx answer (a test fails on any), except the HTTP errors a step declares it provokes; and
 * axe-core checks a page's accessibility from inside it.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export interface TestBrowser {
  context: BrowserContext;
  close(): Promise<void>;
}

/** Launches Chromium with a new `--user-data-dir` (removed at close). */
export async function launchBrowser(options: { viewport?: { width: number; height: number } } = {}): Promise<TestBrowser> {
  const profile = mkdtempSync(path.join(tmpdir(), "kiln-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    acceptDownloads: true,
    viewport: options.viewport ?? { width: 1280, height: 860 },
    locale: "en-GB",
    timezoneId: "UTC",
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

export interface WatchedPage {
  page: Page;
  /** Console errors, page errors and 5xx answers seen so far (a test expects none). */
  problems: string[];
  /** URLs of the event streams (EventSource) the page opened. */
  eventStreams: string[];
  /** Every answer with status 401, with its `WWW-Authenticate` header. */
  unauthorized: Array<{ url: string; challenge: string | undefined }>;
  /** Runs `step`, during which the browser's log of HTTP errors with these statuses is expected. */
  expecting<T>(statuses: number[], step: () => Promise<T>): Promise<T>;
}

const HTTP_ERROR_LOG = /^Failed to load resource: the server responded with a status of (\d{3})/;

export function watchPage(page: Page): WatchedPage {
  const problems: string[] = [];
  const unauthorized: WatchedPage["unauthorized"] = [];
  const eventStreams: string[] = [];
  page.on("request", (r) => {
    if (r.resourceType() === "eventsource") eventStreams.push(r.url());
  });
  let expected = new Set<number>();
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    const status = HTTP_ERROR_LOG.exec(m.text())?.[1];
    if (status !== undefined && expected.has(Number(status))) return;
    problems.push(`console error: ${m.text()} (${m.location().url})`);
  });
  page.on("pageerror", (err) => problems.push(`uncaught: ${err.message}`));
  page.on("response", (r) => {
    if (r.status() >= 500) problems.push(`${r.status()} from ${r.request().method()} ${r.url()}`);
    if (r.status() === 401) unauthorized.push({ url: r.url(), challenge: r.headers()["www-authenticate"] });
  });
  page.on("dialog", (d) => {
    problems.push(`native dialog: ${d.type()} ${d.message()}`);
    void d.dismiss();
  });
  return {
    page,
    problems,
    unauthorized,
    eventStreams,
    async expecting(statuses, step) {
      const before = expected;
      expected = new Set([...before, ...statuses]);
      try {
        return await step();
      } finally {
        expected = before;
      }
    },
  };
}

const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: string[];
}

/**
 * Runs axe-core (WCAG 2.x A and AA rules) in the page; returns the serious and critical
 * violations. Injected through the DevTools protocol, so the page's CSP does not stop it.
 */
export async function accessibilityViolations(page: Page): Promise<AxeViolation[]> {
  await page.evaluate(AXE_SOURCE);
  const result = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run(ctx: Document, opts: object): Promise<{ violations: Array<{ id: string; impact: string | null; help: string; nodes: Array<{ target: unknown[] }> }> }> } }).axe;
    const r = await axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"] }, resultTypes: ["violations"] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => JSON.stringify(n.target)) }));
  });
  return result.filter((v) => v.impact === "serious" || v.impact === "critical");
}
