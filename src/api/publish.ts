/**
 * Publications' routes: publishing a generated image to a registry, the publication's status and
 * cancellation, the published image, its deletion, and the user's publication lists.
 */
import type { FastifyRequest } from "fastify";
import type { PublicationRef } from "../library/index.js";
import type { ApiContext, HandlerMap } from "../server/app.js";
import { listPage, pathIds, readObject, sendBody, sendCreated, sendList, sendNoContent, sendObject } from "../server/http.js";

const publicationRef = (req: FastifyRequest): PublicationRef => pathIds(req, "msid", "tid", "tiid", "ptiid");

export function publishHandlers(ctx: ApiContext): HandlerMap {
  const { publications } = ctx.library;
  return {
    user: {
      async containerTemplateImage_publish(req, reply, { owner }) {
        const ref = pathIds(req, "msid", "tid", "tiid");
        const { value } = await readObject(req, "publishImage");
        return sendCreated(req, reply, "publishImage", await publications.publish(owner, ref, value));
      },

      async containerTemplateImagePublished_get(req, reply, { owner }) {
        return sendObject(req, reply, "publishImage", await publications.get(owner, publicationRef(req)));
      },

      async containerTemplateImagePublish_get(req, reply, { owner }) {
        return sendBody(req, reply, 200, "status", await publications.status(owner, publicationRef(req)));
      },

      async containerTemplateImagePublish_cancel(req, reply, { owner }) {
        return sendBody(req, reply, 200, "status", await publications.cancel(owner, publicationRef(req)));
      },

      async containerTemplateImagePublished_delete(req, reply, { owner }) {
        await publications.delete(owner, publicationRef(req), req.log);
        return sendNoContent(reply);
      },

      async userMachineImagePublished_getAll(req, reply, { owner }) {
        const page = listPage(req, await publications.listAll(owner), "PublishImage");
        return sendList(req, reply, "publishImages", { total: page.total, publishImages: page.items });
      },

      async userMachineImagePublishedStatus_getAll(req, reply, { owner }) {
        const page = listPage(req, await publications.statuses(owner), "OpStatus");
        return sendList(req, reply, "statuses", { total: page.total, statuses: page.items });
      },
    },
  };
}
