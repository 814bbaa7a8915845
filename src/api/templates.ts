/**
 * Container templates' routes: a software bundle on a distribution, from which images are
 * generated, and the formats it may produce.
 */
import type { ApiContext, HandlerMap } from "../server/app.js";
import { parseCriteria, pathIds, readObject, sendCreated, sendList, sendNoContent, sendObject, type Query } from "../server/http.js";
import { SORTABLE_FIELDS } from "../store/store.js";

export function templateHandlers(ctx: ApiContext): HandlerMap {
  const { templates } = ctx.library;
  return {
    user: {
      async containerTemplate_getAll(req, reply, { owner }) {
        const page = await templates.list(owner, pathIds(req, "msid"), parseCriteria(req.query as Query, SORTABLE_FIELDS.templates));
        return sendList(req, reply, "containerTemplates", { total: page.total, containerTemplates: page.items });
      },

      async containerTemplate_create(req, reply, { owner }) {
        const ref = pathIds(req, "msid");
        const { value } = await readObject(req, "containerTemplate");
        return sendCreated(req, reply, "containerTemplate", await templates.create(owner, ref, value));
      },

      async containerTemplate_get(req, reply, { owner }) {
        const { value, lastModified } = await templates.get(owner, pathIds(req, "msid", "tid"));
        return sendObject(req, reply, "containerTemplate", value, { lastModified });
      },

      async containerTemplate_delete(req, reply, { owner }) {
        await templates.delete(owner, pathIds(req, "msid", "tid"), req.log);
        return sendNoContent(reply);
      },

      async containerTemplateTargetFormat_getAll(req, reply, { owner }) {
        const formats = await templates.formats(owner, pathIds(req, "msid", "tid"));
        return sendList(req, reply, "targetFormats", { total: formats.length, targetFormats: formats });
      },
    },
  };
}
