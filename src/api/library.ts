/**
 * The software library's routes: bundles (`mySoftware`), their artifacts (files and folders,
 * with the bytes uploaded and downloaded), and their restriction rules. Each handler decodes the
 * request, calls one library operation and encodes its answer.
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import { checkFileName } from "../domain/artifacts.js";
import type { ApiContext, HandlerMap, UserCall } from "../server/app.js";
import { authorizeDownload, findDownload, sendStoredFile } from "../server/downloads.js";
import { listPage, parseBooleanParam, parseCriteria, parseId, pathIds, pathText, readObject, sendBody, sendCreated, sendList, sendNoContent, sendObject, type Query } from "../server/http.js";
import { SORTABLE_FIELDS } from "../store/store.js";
import { uploadOf } from "./bundle-transfers.js";

export function libraryHandlers(ctx: ApiContext): HandlerMap {
  const { bundles, artifacts } = ctx.library;

  async function download(req: FastifyRequest, reply: FastifyReply, call: UserCall, fileName: string | undefined): Promise<unknown> {
    const target = await findDownload(req, call.principal, async () => artifacts.downloadTarget(call.owner, pathIds(req, "msid", "said")));
    await authorizeDownload(ctx.store, req, call.principal, call.owner, target, { consume: false });
    const file = await artifacts.file(call.owner, pathIds(req, "msid", "said"), fileName);
    // Only an answer that sends the file uses up the one-time key.
    return sendStoredFile(req, reply, ctx.blobs, file, { claim: () => authorizeDownload(ctx.store, req, call.principal, call.owner, target, { consume: true }) });
  }

  return {
    user: {
      async mySoftware_getAll(req, reply, { owner }) {
        const q = req.query as Query;
        const distribId = typeof q.distribId === "string" && q.distribId !== "" ? parseId(q.distribId, "distribId") : undefined;
        const page = await bundles.list(owner, parseCriteria(q, SORTABLE_FIELDS.bundles), distribId);
        return sendList(req, reply, "mySoftwareList", { total: page.total, mySoftwareList: page.items });
      },

      async mySoftware_create(req, reply, { owner }) {
        const { value } = await readObject(req, "mySoftware");
        return sendCreated(req, reply, "mySoftware", await bundles.create(owner, value));
      },

      async mySoftware_get(req, reply, { owner }) {
        return sendObject(req, reply, "mySoftware", await bundles.get(owner, pathIds(req, "msid")));
      },

      async mySoftware_update(req, reply, { owner }) {
        const ref = pathIds(req, "msid");
        const { value } = await readObject(req, "mySoftware");
        return sendObject(req, reply, "mySoftware", await bundles.update(owner, ref, value));
      },

      async mySoftware_clone(req, reply, { owner }) {
        const ref = pathIds(req, "msid");
        const { value } = await readObject(req, "mySoftware");
        return sendCreated(req, reply, "mySoftware", await bundles.clone(owner, ref, value));
      },

      async mySoftware_delete(req, reply, { owner }) {
        await bundles.delete(owner, pathIds(req, "msid"), req.log);
        return sendNoContent(reply);
      },

      async mySoftwareRestriction_update(req, reply, { owner }) {
        const ref = pathIds(req, "msid", "brid");
        const { value } = await readObject(req, "bundleRestriction");
        return sendObject(req, reply, "bundleRestriction", await bundles.updateRestriction(owner, ref, value));
      },

      async mySoftwareRestrictionOS_getAll(req, reply, { owner }) {
        const compatible = parseBooleanParam(req.query as Query, "compatibility") ?? true;
        const list = await bundles.restrictionDistributions(owner, pathIds(req, "msid", "brid"), compatible);
        return sendList(req, reply, "distributions", { total: list.length, distributions: list });
      },

      async mySoftwareRestrictionOS_evaluate(req, reply, { owner }) {
        const ref = pathIds(req, "msid", "brid");
        const { value } = await readObject(req, "bundleRestriction");
        const list = await bundles.evaluateRestriction(owner, ref, value);
        // 201, as UForge's page says (nothing is created: the answer is the distributions the rule allows).
        return sendBody(req, reply, 201, "distributions", { total: list.length, distributions: list });
      },

      async mySoftwareArtifact_getAll(req, reply, { owner }) {
        const filename = (req.query as Query).filename;
        const trees = await artifacts.list(owner, pathIds(req, "msid"), typeof filename === "string" ? filename : undefined);
        const page = listPage(req, trees, "SoftwareArtifact");
        return sendList(req, reply, "softwareArtifacts", { total: page.total, softwareArtifacts: page.items });
      },

      async mySoftwareArtifact_add(req, reply, { owner }) {
        const ref = pathIds(req, "msid");
        const { value } = await readObject(req, "softwareArtifact");
        return sendCreated(req, reply, "softwareArtifact", await artifacts.add(owner, ref, value));
      },

      async mySoftwareArtifact_addChild(req, reply, { owner }) {
        const { msid, said } = pathIds(req, "msid", "said");
        const { value } = await readObject(req, "softwareArtifact");
        return sendCreated(req, reply, "softwareArtifact", await artifacts.add(owner, { msid, parent: said }, value));
      },

      async mySoftwareArtifact_get(req, reply, { owner }) {
        return sendObject(req, reply, "softwareArtifact", await artifacts.get(owner, pathIds(req, "msid", "said")));
      },

      async mySoftwareArtifact_update(req, reply, { owner }) {
        const ref = pathIds(req, "msid", "said");
        const { value } = await readObject(req, "softwareArtifact");
        const recursive = parseBooleanParam(req.query as Query, "recursive") === true;
        return sendObject(req, reply, "softwareArtifact", await artifacts.update(owner, ref, value, recursive));
      },

      async mySoftwareArtifact_updateAll(req, reply, { owner }) {
        const ref = pathIds(req, "msid");
        const { value } = await readObject(req, "softwareArtifacts");
        const recursive = parseBooleanParam(req.query as Query, "recursive") === true;
        const trees = await artifacts.updateAll(owner, ref, value.softwareArtifacts ?? [], recursive);
        return sendList(req, reply, "softwareArtifacts", { total: trees.length, softwareArtifacts: trees });
      },

      async mySoftwareArtifact_delete(req, reply, { owner }) {
        await artifacts.delete(owner, pathIds(req, "msid", "said"), req.log);
        return sendNoContent(reply);
      },

      async mySoftwareArtifact_deleteAll(req, reply, { owner }) {
        await artifacts.deleteAll(owner, pathIds(req, "msid"), req.log);
        return sendNoContent(reply);
      },

      async mySoftwareArtifact_upload(req, reply, { owner }) {
        const ref = pathIds(req, "msid", "said");
        const updated = await artifacts.upload(owner, ref, uploadOf(req, checkFileName(pathText(req, "fileName"))), req.log);
        return sendObject(req, reply, "softwareArtifact", updated, { status: 201 });
      },

      async mySoftwareArtifact_download(req, reply, call) {
        return download(req, reply, call, undefined);
      },

      async mySoftwareArtifact_downloadFile(req, reply, call) {
        return download(req, reply, call, checkFileName(pathText(req, "fileName")));
      },
    },
  };
}
