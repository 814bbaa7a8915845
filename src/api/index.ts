/**
 * Every API handler, by UForge operation id (the `id` column of endpoints.tsv). The router
 * registers a route for each operation that has one here.
 */
import type { ApiContext, HandlerMap } from "../server/app.js";
import { accountHandlers } from "./accounts.js";
import { distributionHandlers } from "./distributions.js";
import { imageHandlers } from "./images.js";
import { publishHandlers } from "./publish.js";
import { libraryHandlers } from "./library.js";
import { templateHandlers } from "./templates.js";
import { userHandlers } from "./users.js";

export function apiHandlers(ctx: ApiContext): HandlerMap {
  const maps: HandlerMap[] = [userHandlers(ctx), libraryHandlers(ctx), accountHandlers(ctx), distributionHandlers(ctx), templateHandlers(ctx), imageHandlers(ctx), publishHandlers(ctx)];
  const out: HandlerMap = {};
  for (const m of maps) {
    for (const [id, h] of Object.entries(m)) {
      if (out[id]) throw new Error(`two handlers for ${id}`);
      out[id] = h;
    }
  }
  return out;
}
