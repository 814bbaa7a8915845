/** A container template: "Generate image" and the template's images, live. */
import type { JSX } from "preact";
import { useCallback, useMemo, useState } from "preact/hooks";
import { parseEntrypoint } from "../../../src/domain/entrypoint.js";
import { api, distributionLabel, messageOf, type TargetFormat, type Template } from "../api.js";
import { useLiveRefresh, type StatusEvent } from "../live.js";
import { Dialog, ErrorText, Field, Link, Loading, Page, useData } from "../ui.js";
import { ImageItem, usePublications } from "./images.js";

export function TemplatePage(props: { login: string; msid: string; tid: string }): JSX.Element {
  const uri = `users/${props.login}/mysoftware/${props.msid}/templates/${props.tid}`;
  const template = useData(`template:${uri}`, () => api<Template>("GET", uri));
  const [generating, setGenerating] = useState(false);
  const ofThis = useCallback((imageUri: string) => imageUri.startsWith(`${uri}/images/`), [uri]);
  const pubs = usePublications(props.login, ofThis);
  const known = new Set((template.data?.images ?? []).map((i) => i.uri));
  useLiveRefresh(
    useCallback((e: StatusEvent) => e.kind === "generate" && ofThis(e.uri), [ofThis]),
    (u) => known.has(u),
    template.reload,
  );
  const t = template.data;
  if (!t) {
    return (
      <Page title="Template">
        <ErrorText message={template.error} />
        {!template.error && <Loading what="the template" />}
      </Page>
    );
  }
  const dist = distributionLabel(t.distribution);
  const images = [...t.images].sort((a, b) => b.revision - a.revision);
  return (
    <Page
      title={`${t.softwareBundle.name} on ${dist}`}
      heading={
        <>
          {t.softwareBundle.name} <span class="muted">on {dist}</span>
        </>
      }
      actions={
        <button type="button" class="primary" onClick={() => setGenerating(true)}>
          Generate image
        </button>
      }
    >
      <nav aria-label="Breadcrumb" class="crumbs">
        <Link href="/library">Software library</Link> › <Link href={`/library/${props.msid}`}>{t.softwareBundle.name}</Link> › <span aria-current="page">{dist}</span>
      </nav>
      <section aria-labelledby="images-title">
        <h2 id="images-title">Images</h2>
        <ErrorText message={pubs.error} />
        {images.length === 0 && <p class="empty">No image yet: “Generate image” makes one.</p>}
        {images.length > 0 && (
          <ul class="images" aria-label="Images of the template">
            {images.map((img) => (
              <ImageItem
                key={img.uri}
                login={props.login}
                image={img}
                heading={<h3>Revision {img.revision}</h3>}
                publications={pubs.byImage.get(img.uri) ?? []}
                onChange={template.reload}
                onPublished={pubs.reload}
              />
            ))}
          </ul>
        )}
      </section>
      {generating && (
        <GenerateDialog
          uri={uri}
          onClose={() => setGenerating(false)}
          onDone={() => {
            setGenerating(false);
            template.reload();
          }}
        />
      )}
    </Page>
  );
}

function GenerateDialog(props: { uri: string; onClose: () => void; onDone: () => void }): JSX.Element {
  const formats = useData(`formats:${props.uri}`, () => api<{ targetFormats?: TargetFormat[] }>("GET", `${props.uri}/formats`));
  const list = formats.data?.targetFormats ?? [];
  const [format, setFormat] = useState("");
  const [compress, setCompress] = useState(true);
  const [entrypoint, setEntrypoint] = useState("");
  // The API's own check, as you type.
  const entrypointError = useMemo(() => {
    if (entrypoint.trim() === "") return undefined;
    try {
      parseEntrypoint(entrypoint);
      return undefined;
    } catch (err) {
      return messageOf(err).replace(/^image\.entrypoint:?\s*/, "");
    }
  }, [entrypoint]);
  const chosen = format || list[0]?.name || "";
  return (
    <Dialog
      title="Generate image"
      submitLabel="Generate"
      canSubmit={chosen !== "" && !entrypointError}
      onClose={props.onClose}
      onSubmit={async () => {
        await api("POST", `${props.uri}/images`, {
          targetFormat: { name: chosen },
          compress,
          ...(entrypoint.trim() ? { entrypoint: entrypoint.trim() } : {}),
        });
        props.onDone();
      }}
    >
      <ErrorText message={formats.error} />
      {formats.data && list.length === 0 && <p class="error">The bundle's restriction rule allows no format on this distribution.</p>}
      <Field label="Format">
        {({ id }) => (
          <select id={id} value={chosen} onChange={(e) => setFormat(e.currentTarget.value)}>
            {list.map((f) => (
              <option key={f.name} value={f.name}>
                {f.name}
              </option>
            ))}
          </select>
        )}
      </Field>
      <label class="check">
        <input type="checkbox" checked={compress} onChange={(e) => setCompress(e.currentTarget.checked)} /> Compress
      </label>
      <p class="hint">Only a compressed image can be downloaded; any image can be published.</p>
      <Field label="Entrypoint" hint='Exec form, e.g. ["/opt/hello/bin/hello", "--verbose"]; empty for none' error={entrypointError}>
        {({ id, describedBy }) => (
          <input id={id} class="mono" spellcheck={false} value={entrypoint} aria-invalid={entrypointError ? "true" : undefined} aria-describedby={describedBy} onInput={(e) => setEntrypoint(e.currentTarget.value)} />
        )}
      </Field>
    </Dialog>
  );
}
