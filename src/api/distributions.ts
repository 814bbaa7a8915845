/**
 * The distributions' routes (Kiln's configured distributions, their packages from the
 * repository index), plus the container target formats and platforms.
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import { CONTAINER_FORMATS, CONTAINER_PLATFORMS } from "../domain/formats.js";
import { fail } from "../domain/errors.js";
import { pkgField } from "../library/distributions.js";
import { distributionWire, imageFormatWire, targetFormatWire, targetPlatformWire, xmlRepresentable } from "../library/representations.js";
import type { ApiContext, HandlerMap } from "../server/app.js";
import { listPage, parseBooleanParam, pathIds, readObject, responseFormat, sendList, sendObject, type Query } from "../server/http.js";

export function distributionHandlers(ctx: ApiContext): HandlerMap {
  const { distributions } = ctx.library;
  const listDistributions = async (req: FastifyRequest, reply: FastifyReply): Promise<unknown> => {
    // XML clients are not shown what the schema cannot carry (arm64 distributions): JSON clients are.
    const xml = responseFormat(req) === "xml";
    const page = listPage(req, distributions.list().filter((e) => !xml || xmlRepresentable(e)).map(distributionWire), "Distribution");
    return sendList(req, reply, "distributions", { total: page.total, distributions: page.items });
  };
  return {
    global: {
      os_getAll: listDistributions,

      async os_get(req, reply) {
        const { value, lastModified } = distributions.get(pathIds(req, "id").id);
        if (responseFormat(req) === "xml" && !xmlRepresentable(distributions.entry(value.dbId!))) {
          fail("notAcceptable", `distribution ${value.dbId} (${value.description}) has an architecture uforge.xsd cannot express in XML: ask with Accept: application/json`);
        }
        return sendObject(req, reply, "distribution", value, { lastModified });
      },

      async os_update(req, reply) {
        const { id } = pathIds(req, "id");
        const { value } = await readObject(req, "distribution");
        return sendObject(req, reply, "distribution", await distributions.setActive(id, value.active));
      },

      async osPkg_getAll(req, reply) {
        const { id } = pathIds(req, "id");
        const q = req.query as Query;
        const pkgs = await distributions.packages(id, { latestOnly: parseBooleanParam(q, "latestOnly") === true });
        // Read from the index entries as they are: making 60,000 wire objects to keep ten would be waste.
        const page = listPage(req, pkgs, "Pkg", (p, field) => pkgField(id, p, field));
        // PkgList has no `total` element in the schema: the count travels in a header.
        reply.header("X-Total-Count", String(page.total));
        return sendList(req, reply, "packages", { pkgs: await distributions.wire(id, page.items) });
      },

      async osTemplate_getAll(req, reply) {
        const page = listPage(req, distributions.profiles(pathIds(req, "id").id), "DistribProfile");
        return sendList(req, reply, "distribProfiles", { total: page.total, distribProfiles: page.items });
      },

      async osPkg_get(req, reply) {
        const { id, pid } = pathIds(req, "id", "pid");
        const d = distributions.get(id);
        return sendObject(req, reply, "package", await distributions.package(id, pid), { lastModified: d.lastModified });
      },
    },
    user: {
      userOS_getAll: listDistributions,

      async userFormats_getAll(req, reply) {
        const page = listPage(req, CONTAINER_FORMATS.map(imageFormatWire), "ImageFormat");
        return sendList(req, reply, "imageFormats", { total: page.total, imageFormats: page.items });
      },

      async userTargetFormat_getAll(req, reply, { owner }) {
        const page = listPage(req, CONTAINER_FORMATS.map((f) => targetFormatWire(owner.login, f)), "TargetFormat");
        return sendList(req, reply, "targetFormats", { total: page.total, targetFormats: page.items });
      },

      async userTargetPlatforms_getAll(req, reply, { owner }) {
        const page = listPage(req, CONTAINER_PLATFORMS.map((p) => targetPlatformWire(owner.login, p)), "TargetPlatform");
        return sendList(req, reply, "targetPlatforms", { total: page.total, targetPlatforms: page.items });
      },

      async userTargetPlatformFormat_getAll(req, reply, { owner }) {
        const { tpid } = pathIds(req, "tpid");
        const platform = CONTAINER_PLATFORMS.find((p) => p.id === tpid);
        if (!platform) fail("notFound", `no target platform ${tpid}`);
        const formats = CONTAINER_FORMATS.filter((f) => platform.formatIds.includes(f.id));
        const page = listPage(req, formats.map((f) => targetFormatWire(owner.login, f)), "TargetFormat");
        return sendList(req, reply, "targetFormats", { total: page.total, targetFormats: page.items });
      },
    },
  };
}
