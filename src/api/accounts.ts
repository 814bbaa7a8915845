/**
 * Cloud accounts' routes: the registries images are published to.
 */
import type { ApiContext, HandlerMap } from "../server/app.js";
import { parseCriteria, pathIds, readObject, sendBody, sendCreated, sendList, sendNoContent, sendObject, type Query } from "../server/http.js";
import { SORTABLE_FIELDS } from "../store/store.js";

export function accountHandlers(ctx: ApiContext): HandlerMap {
  const { accounts } = ctx.library;
  return {
    user: {
      async cloudAccount_getAll(req, reply, { owner }) {
        const page = await accounts.list(owner, parseCriteria(req.query as Query, SORTABLE_FIELDS.cloudAccounts));
        return sendList(req, reply, "credAccounts", { total: page.total, credAccounts: page.items });
      },

      async cloudAccount_create(req, reply, { owner }) {
        const { value } = await readObject(req, "credAccount");
        return sendCreated(req, reply, "credAccount", await accounts.create(owner, value));
      },

      async cloudAccount_get(req, reply, { owner }) {
        return sendObject(req, reply, "credAccount", await accounts.get(owner, pathIds(req, "caid").caid));
      },

      async cloudAccount_update(req, reply, { owner }) {
        const { caid } = pathIds(req, "caid");
        const { value } = await readObject(req, "credAccount");
        return sendObject(req, reply, "credAccount", await accounts.update(owner, caid, value));
      },

      async cloudAccount_delete(req, reply, { owner }) {
        await accounts.delete(owner, pathIds(req, "caid").caid);
        return sendNoContent(reply);
      },

      async cloudAccountResources_get(req, reply, { owner }) {
        return sendBody(req, reply, 200, "credAccountResources", { resources: await accounts.resources(owner, pathIds(req, "caid").caid) });
      },
    },
  };
}
