/**
 * Serves the web console (built from `console/` into `dist/console/` by `npm run build`, which
 * `npm install` runs): the page at `/` and at every console path (`/library/...`, `/images/...`,
 * `/accounts`), and its assets under `/assets/` — content-hashed names, cached for a year,
 * gzip and brotli copies made at build time.
 *
 * The page is rendered per request with the session it is opened in (the signed-in user and the
 * CSRF token, or nothing): the console draws its first screen without asking the API who it is,
 * and a page opened after sign-out shows the sign-in form. Its Content-Security-Policy allows
 * scripts, styles and connections to this server only: nothing is loaded from anywhere else.
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import fastifyStatic from "@fastify/static";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { fail } from "../domain/errors.js";
import { pageSession, type Sessions } from "./session.js";

/** Where `npm run build` puts the console (the same from `src/` under vitest and from `dist/`). */
export const CONSOLE_DIR = fileURLToPath(new URL("../../dist/console/", import.meta.url));
const SESSION_SLOT = "<!--kiln:session-->";

/** The console's URL paths (the client-side router's); the API stays under `/api`. */
const PAGES = ["/", "/library", "/library/*", "/images", "/images/*", "/accounts", "/accounts/*"];

const PAGE_HEADERS = {
  "Content-Security-Policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  "X-Content-Type-Options": "nosniff",
  "X-Frame-Options": "DENY",
  "Referrer-Policy": "same-origin",
  // The page carries the session's CSRF token: never kept by a cache.
  "Cache-Control": "no-store",
};

/** JSON that may sit inside a `<script>` element: `<` never closes it. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value ?? null).replace(/</g, "\\u003c");
}

export async function registerConsole(app: FastifyInstance, deps: { sessions: Sessions; dir?: string }): Promise<void> {
  const dir = deps.dir ?? CONSOLE_DIR;
  const indexFile = path.join(dir, "index.html");
  const template = existsSync(indexFile) ? readFileSync(indexFile, "utf8") : undefined;
  if (template !== undefined && !template.includes(SESSION_SLOT)) throw new Error(`${indexFile} has no ${SESSION_SLOT} slot: rebuild the console (npm run build)`);

  if (template !== undefined) {
    await app.register(fastifyStatic, {
      root: path.join(dir, "assets"),
      prefix: "/assets/",
      preCompressed: true,
      index: false,
      decorateReply: false,
      immutable: true,
      maxAge: "365d",
      setHeaders: (res) => res.setHeader("X-Content-Type-Options", "nosniff"),
    });
  }

  const page = async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    if (template === undefined) fail("unavailable", "the console is not built: run npm run build");
    const session = await pageSession(deps.sessions, req);
    const html = template.replace(SESSION_SLOT, `<script type="application/json" id="kiln-session">${scriptJson(session)}</script>`);
    return reply.code(200).headers(PAGE_HEADERS).type("text/html; charset=utf-8").send(html);
  };
  for (const url of PAGES) app.get(url, page);
}
