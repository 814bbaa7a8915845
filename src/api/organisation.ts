/**
 * The user's organisations and quotas, and an organisation's categories: Kiln's answers to
 * what UForge's clients ask (see library/organisation.ts).
 */
import type { ApiContext, HandlerMap } from "../server/app.js";
import { listPage, pathIds, sendList, type Query } from "../server/http.js";

export function organisationHandlers(ctx: ApiContext): HandlerMap {
  const { organisation } = ctx.library;
  return {
    user: {
      async userOrg_getAll(req, reply, { owner }) {
        const name = (req.query as Query).name;
        const orgs = organisation.orgs(owner.admin, typeof name === "string" ? name : undefined);
        return sendList(req, reply, "orgs", { total: orgs.length, orgs });
      },

      async userQuotas_get(req, reply) {
        const quotas = organisation.quotas();
        return sendList(req, reply, "quotas", { total: quotas.length, quotas });
      },
    },
    global: {
      async category_getAll(req, reply) {
        // hammr asks for `query=type=='PROJECT'`.
        const page = listPage(req, organisation.categories(pathIds(req, "oid").oid), "Category");
        return sendList(req, reply, "categories", { total: page.total, categories: page.items });
      },
    },
  };
}
