/**
 * Images' routes: generation from a container template, the image and its status (follow and
 * cancel), its package list, its download, deletion, and the user's image lists.
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import type { Digest } from "../blobs/blob-store.js";
import type { ImageRef } from "../library/index.js";
import type { ApiContext, HandlerMap, UserCall } from "../server/app.js";
import { authorizeDownload, findDownload, sendStoredFile } from "../server/downloads.js";
import { listPage, pathIds, pathText, readObject, sendBody, sendCreated, sendList, sendNoContent, sendObject } from "../server/http.js";

/** An image's ids; the download routes name the image `{itid}` where the others say `{tiid}`. */
function imageRef(req: FastifyRequest, param: "tiid" | "itid" = "tiid"): ImageRef {
  const ids = pathIds(req, "msid", "tid", param);
  return { msid: ids.msid, tid: ids.tid, tiid: ids[param] };
}

export function imageHandlers(ctx: ApiContext): HandlerMap {
  const { images } = ctx.library;

  /** A JSON document of the blob store (a report, an SBOM): content-addressed, so its ETag is its digest. */
  function sendDocument(reply: FastifyReply, digest: Digest, contentType: string): FastifyReply {
    return reply.code(200).header("content-type", contentType).header("etag", `"${digest}"`).send(ctx.blobs.openVerified(digest));
  }

  async function download(req: FastifyRequest, reply: FastifyReply, call: UserCall, fileName: string | undefined): Promise<unknown> {
    const target = await findDownload(req, call.principal, async () => images.downloadTarget(call.owner, imageRef(req, "itid")));
    const ref = imageRef(req, "itid");
    await authorizeDownload(ctx.store, req, call.principal, call.owner, target, { consume: false });
    const file = await images.file(call.owner, ref, fileName);
    // Only an answer that sends the file uses up a one-time key.
    return sendStoredFile(req, reply, ctx.blobs, file, { claim: () => authorizeDownload(ctx.store, req, call.principal, call.owner, target, { consume: true }) });
  }

  return {
    user: {
      async containerTemplate_generate(req, reply, { owner }) {
        const ref = pathIds(req, "msid", "tid");
        const { value, extensions } = await readObject(req, "image", ["architectures"]);
        return sendCreated(req, reply, "image", await images.generate(owner, ref, value, extensions));
      },

      async containerTemplateImage_get(req, reply, { owner }) {
        const image = await images.get(owner, imageRef(req), { withDownloadKey: true });
        return sendObject(req, reply, "image", image, { volatile: ["downloadKey", "downloadUri"] });
      },

      async containerTemplateImage_delete(req, reply, { owner }) {
        await images.delete(owner, imageRef(req), req.log);
        return sendNoContent(reply);
      },

      async containerTemplateImageGeneration_get(req, reply, { owner }) {
        return sendBody(req, reply, 200, "status", await images.status(owner, imageRef(req)));
      },

      async containerTemplateImageGeneration_cancel(req, reply, { owner }) {
        return sendBody(req, reply, 200, "status", await images.cancel(owner, imageRef(req)));
      },

      async containerTemplateImagePkgs_getAll(req, reply, { owner }) {
        const pkgs = await images.packages(owner, imageRef(req));
        return sendList(req, reply, "imagePkgs", { total: pkgs.length, imagePkgs: pkgs });
      },

      async containerTemplateImageReport_get(req, reply, { owner }) {
        return sendDocument(reply, await images.document(owner, imageRef(req), "report"), "application/json; charset=utf-8");
      },

      async containerTemplateImageSbom_get(req, reply, { owner }) {
        return sendDocument(reply, await images.document(owner, imageRef(req), "sbom"), "application/spdx+json");
      },

      async containerTemplateImage_download(req, reply, call) {
        return download(req, reply, call, undefined);
      },

      async containerTemplateImage_downloadFile(req, reply, call) {
        return download(req, reply, call, pathText(req, "fileName"));
      },

      async userMachineImage_getAll(req, reply, { owner }) {
        const page = listPage(req, await images.listAll(owner), "Image");
        return sendList(req, reply, "images", { total: page.total, images: page.items });
      },

      async userMachineImageStatus_get(req, reply, { owner }) {
        const page = listPage(req, await images.statuses(owner), "OpStatus");
        return sendList(req, reply, "statuses", { total: page.total, statuses: page.items });
      },
    },
  };
}
