/**
 * Bundle imports and exports (hammr's `bundle create`, `bundle import`, `bundle export`), and a
 * bundle's license and logo files. Each handler decodes the request, calls one library
 * operation and encodes its answer.
 */
import type { FastifyRequest } from "fastify";
import { fail } from "../domain/errors.js";
import type { Upload } from "../library/artifacts.js";
import type { ApiContext, HandlerMap } from "../server/app.js";
import { checkFileName } from "../domain/artifacts.js";
import { contentDisposition, sendStoredFile } from "../server/downloads.js";
import { detachedBody, discardBody, parseBooleanParam, pathIds, pathText, sendBody, sendCreated, sendNoContent, sendObject, type Query } from "../server/http.js";

/** A raw request body as an upload, whatever its content type (hammr's SDK decides it). */
export function uploadOf(req: FastifyRequest, fileName: string): Upload {
  const declared = Number(req.headers["content-length"]);
  const body = detachedBody(req);
  if (!body) fail("malformedBody", "the upload has no body");
  return {
    fileName,
    body,
    declaredSize: Number.isFinite(declared) ? declared : undefined,
    contentType: (req.headers["content-type"] ?? "").split(";")[0]!.trim(),
    discard: () => discardBody(req),
  };
}

export function bundleTransferHandlers(ctx: ApiContext): HandlerMap {
  const { imports, exports, bundleFiles } = ctx.library;
  const { blobs } = ctx;
  const fileName = (req: FastifyRequest): string => checkFileName(pathText(req, "fileName"));
  return {
    user: {
      async softwareBundle_import(req, reply, { owner }) {
        const imported = parseBooleanParam(req.query as Query, "imported") ?? false;
        return sendCreated(req, reply, "softwareBundleImport", await imports.create(owner, imported));
      },

      async softwareBundleImport_get(req, reply, { owner }) {
        return sendObject(req, reply, "softwareBundleImport", await imports.get(owner, pathIds(req, "sbid").sbid));
      },

      async softwareBundleImportStatus_get(req, reply, { owner }) {
        return sendObject(req, reply, "status", await imports.status(owner, pathIds(req, "sbid").sbid));
      },

      async softwareBundleImport_upload(req, reply, { owner }) {
        const { sbid } = pathIds(req, "sbid");
        return sendBody(req, reply, 201, "status", await imports.upload(owner, sbid, uploadOf(req, "archive.tar.gz")));
      },

      async mySoftware_export(req, reply, { owner }) {
        const format = (req.query as Query).outputFormat ?? "yaml";
        if (format !== "yaml" && format !== "json") fail("invalidQuery", `query parameter outputFormat must be yaml or json, got ${JSON.stringify(format)}`);
        return sendCreated(req, reply, "softwareBundleExport", await exports.create(owner, pathIds(req, "msid"), format));
      },

      async mySoftwareExportStatus_get(req, reply, { owner }) {
        return sendObject(req, reply, "status", await exports.status(owner, pathIds(req, "msid", "eid")));
      },

      async mySoftwareExport_download(req, reply, { owner }) {
        const { stream, fileName } = await exports.download(owner, pathIds(req, "msid", "eid"));
        return reply.type("application/gzip").header("Content-Disposition", contentDisposition(fileName)).send(stream);
      },

      async mySoftwareLicense_upload(req, reply, { owner }) {
        return sendCreated(req, reply, "mySoftware", await bundleFiles.upload(owner, pathIds(req, "msid"), "license", undefined, uploadOf(req, "LICENSE"), req.log));
      },

      async mySoftwareLicense_uploadFile(req, reply, { owner }) {
        const name = fileName(req);
        return sendCreated(req, reply, "mySoftware", await bundleFiles.upload(owner, pathIds(req, "msid"), "license", name, uploadOf(req, name), req.log));
      },

      async mySoftwareLicense_download(req, reply, { owner }) {
        const { msid, lid } = pathIds(req, "msid", "lid");
        return sendStoredFile(req, reply, blobs, await bundleFiles.file(owner, { msid }, "license", lid));
      },

      async mySoftwareLicense_delete(req, reply, { owner }) {
        const { msid, lid } = pathIds(req, "msid", "lid");
        await bundleFiles.delete(owner, { msid }, "license", lid, req.log);
        return sendNoContent(reply);
      },

      async mySoftwareLogo_upload(req, reply, { owner }) {
        const name = fileName(req);
        const ref = pathIds(req, "msid");
        await bundleFiles.upload(owner, ref, "logo", name, uploadOf(req, name), req.log);
        return sendCreated(req, reply, "logo", await bundleFiles.logo(owner, ref));
      },

      async mySoftwareLogo_download(req, reply, { owner }) {
        const { msid, logoId } = pathIds(req, "msid", "logoId");
        return sendStoredFile(req, reply, blobs, await bundleFiles.file(owner, { msid }, "logo", logoId));
      },

      async mySoftwareLogo_downloadFile(req, reply, { owner }) {
        const { msid, logoId } = pathIds(req, "msid", "logoId");
        return sendStoredFile(req, reply, blobs, await bundleFiles.file(owner, { msid }, "logo", logoId, fileName(req)));
      },

      async mySoftwareLogo_delete(req, reply, { owner }) {
        const { msid, logoId } = pathIds(req, "msid", "logoId");
        await bundleFiles.delete(owner, { msid }, "logo", logoId, req.log);
        return sendNoContent(reply);
      },

      async mySoftwareExport_delete(req, reply, { owner }) {
        await exports.delete(owner, pathIds(req, "msid", "eid"));
        return sendNoContent(reply);
      },
    },
  };
}
