/**
 * Every API handler, by UForge operation id (the `id` column of endpoints.tsv). The router
 * registers a route for each operation that has one here.
 */
import type { ApiContext, HandlerMap } from "../server/app.js";
import { accountHandlers } from "./accounts.js";
import { bundleTransferHandlers } from "./bundle-transfers.js";
import { distributionHandlers } from "./distributions.js";
import { imageHandlers } from "./images.js";
import { libraryHandlers } from "./library.js";
import { organisationHandlers } from "./organisation.js";
import { publishHandlers } from "./publish.js";
import { templateHandlers } from "./templates.js";
import { userHandlers } from "./users.js";

export function apiHandlers(ctx: ApiContext): Required<HandlerMap> {
  const maps: HandlerMap[] = [userHandlers(ctx), libraryHandlers(ctx), accountHandlers(ctx), distributionHandlers(ctx), templateHandlers(ctx), imageHandlers(ctx), publishHandlers(ctx), organisationHandlers(ctx), bundleTransferHandlers(ctx)];
  const out: Required<HandlerMap> = { user: {}, global: {} };
  for (const m of maps) {
    for (const kind of ["user", "global"] as const) {
      for (const [id, h] of Object.entries(m[kind] ?? {})) {
        if (out.user[id] || out.global[id]) throw new Error(`two handlers for ${id}`);
        (out[kind] as Record<string, typeof h>)[id] = h;
      }
    }
  }
  return out;
}
