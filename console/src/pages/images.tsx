/**
 * Images: the item every list shows (status live, Cancel, Download, Publish, Delete, and the
 * image's publications with their own live status), the page of every image of the user, and
 * one image's page with its packages.
 */
import type { JSX } from "preact";
import { useCallback, useState } from "preact/hooks";
import { api, type CloudAccount, type Image, type ImagePackage, type Publication } from "../api.js";
import { ENDED, useLiveRefresh, useLiveStatus, type StatusEvent } from "../live.js";
import { ConfirmButton, Dialog, ErrorText, Field, JobStatus, Link, Loading, Page, formatBytes, formatDate, useData } from "../ui.js";

/** `/images/<msid>/<tid>/<id>` for `users/<login>/mysoftware/<msid>/templates/<tid>/images/<id>`. */
export function imagePath(uri: string): string {
  const m = /mysoftware\/(\d+)\/templates\/(\d+)\/images\/(\d+)$/.exec(uri);
  return m ? `/images/${m[1]}/${m[2]}/${m[3]}` : "/images";
}

export function publicationName(p: Publication): string {
  return p.registeringName ?? p.publishLocation ?? `${p.namespace ? `${p.namespace}/` : ""}${p.repositoryName}:${p.tagName}`;
}

/** The user's publications, grouped by image, refreshed when one starts or ends. */
export function usePublications(login: string, imageFilter: (imageUri: string) => boolean): { byImage: Map<string, Publication[]>; error: string | undefined; reload: () => void } {
  const pubs = useData(`pimages:${login}`, () => api<{ publishImages?: Publication[] }>("GET", `users/${login}/pimages`));
  const byImage = new Map<string, Publication[]>();
  for (const p of pubs.data?.publishImages ?? []) {
    if (!imageFilter(p.imageUri)) continue;
    const list = byImage.get(p.imageUri) ?? [];
    list.push(p);
    byImage.set(p.imageUri, list);
  }
  const known = new Set((pubs.data?.publishImages ?? []).map((p) => p.uri));
  useLiveRefresh(
    useCallback((e: StatusEvent) => e.kind === "publish" && imageFilter(e.imageUri), [imageFilter]),
    (uri) => known.has(uri),
    pubs.reload,
  );
  return { byImage, error: pubs.error, reload: pubs.reload };
}

export function ImageItem(props: { login: string; image: Image; heading: JSX.Element; publications: Publication[]; onChange: () => void; onPublished: () => void }): JSX.Element {
  const img = props.image;
  const status = useLiveStatus(img.uri, img.status);
  const [publishing, setPublishing] = useState(false);
  const [error, setError] = useState<string>();
  const running = !ENDED.has(status.state);
  const act = (f: () => Promise<unknown>) => async () => {
    setError(undefined);
    try {
      await f();
      props.onChange();
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    }
  };
  return (
    <li class="image">
      <div class="image-head">
        {props.heading}
        <span class="muted small">
          {img.targetFormat.name}
          {img.compress ? ", compressed" : ""} · {formatDate(img.created)}
        </span>
      </div>
      <div class="image-status" aria-live="polite" aria-atomic="false">
        <JobStatus status={status} label={`Progress of revision ${img.revision}`} />
      </div>
      <div class="buttons">
        {running && (
          <button type="button" onClick={act(() => api("DELETE", `${img.uri}/status`))}>
            Cancel
          </button>
        )}
        {status.state === "complete" && img.downloadUri && (
          <a class="button" href={`/api/${img.downloadUri.split("?")[0]}`} download={img.fileName}>
            Download
          </a>
        )}
        {status.state === "complete" && img.fileSize !== undefined && <span class="muted small">{formatBytes(img.fileSize)}</span>}
        <button type="button" disabled={status.state !== "complete"} title={status.state === "complete" ? undefined : "An image can be published once it is complete"} onClick={() => setPublishing(true)}>
          Publish
        </button>
        <ConfirmButton label="Delete" name={`Delete revision ${img.revision}`} question={`Delete revision ${img.revision} of ${img.name}?`} confirmLabel="Delete" onConfirm={async () => {
          await api("DELETE", img.uri);
          props.onChange();
        }} />
      </div>
      <ErrorText message={error} />
      {props.publications.length > 0 && (
        <ul class="publications" aria-label={`Publications of revision ${img.revision}`}>
          {props.publications.map((p) => (
            <PublicationItem key={p.uri} publication={p} />
          ))}
        </ul>
      )}
      {publishing && (
        <PublishDialog
          login={props.login}
          image={img}
          onClose={() => setPublishing(false)}
          onDone={() => {
            setPublishing(false);
            props.onPublished();
          }}
        />
      )}
    </li>
  );
}

function PublicationItem(props: { publication: Publication }): JSX.Element {
  const p = props.publication;
  const status = useLiveStatus(p.uri, p.status);
  return (
    <li>
      <span class="mono">{publicationName(p)}</span>
      <span aria-live="polite">
        <JobStatus status={status} label={`Progress of the publication to ${publicationName(p)}`} />
      </span>
      {status.state === "complete" && p.cloudId && <span class="mono small muted">{p.cloudId}</span>}
    </li>
  );
}

function PublishDialog(props: { login: string; image: Image; onClose: () => void; onDone: () => void }): JSX.Element {
  const type = props.image.targetFormat.credAccountType;
  const accounts = useData(`accounts:${props.login}`, () => api<{ credAccounts?: CloudAccount[] }>("GET", `users/${props.login}/accounts`));
  const usable = (accounts.data?.credAccounts ?? []).filter((a) => (type === "docker" ? a.xsiType === "CredAccountDocker" : a.xsiType === "CredAccountOpenShift"));
  const [account, setAccount] = useState("");
  const [namespace, setNamespace] = useState("");
  const [repository, setRepository] = useState(props.image.name.toLowerCase().replace(/[^a-z0-9._-]+/g, "-"));
  const [tag, setTag] = useState(props.image.version?.replace(/[^A-Za-z0-9._-]+/g, "-") || "latest");
  const chosen = account || usable[0]?.uri || "";
  return (
    <Dialog
      title={`Publish revision ${props.image.revision}`}
      submitLabel="Publish"
      canSubmit={chosen !== "" && repository.trim() !== "" && tag.trim() !== ""}
      onClose={props.onClose}
      onSubmit={async () => {
        await api("POST", `${props.image.uri}/pimages`, {
          xsiType: type === "docker" ? "PublishImageDocker" : "PublishImageOpenShift",
          credAccount: { xsiType: type === "docker" ? "CredAccountDocker" : "CredAccountOpenShift", uri: chosen },
          namespace: namespace.trim(),
          repositoryName: repository.trim(),
          tagName: tag.trim(),
        });
        props.onDone();
      }}
    >
      <ErrorText message={accounts.error} />
      {accounts.data && usable.length === 0 && (
        <p class="error">
          You have no {type === "docker" ? "Docker registry" : "OpenShift"} account yet: add one in <Link href="/accounts">Cloud accounts</Link>.
        </p>
      )}
      <Field label="Account">
        {({ id }) => (
          <select id={id} value={chosen} onChange={(e) => setAccount(e.currentTarget.value)}>
            {usable.map((a) => (
              <option key={a.uri} value={a.uri}>
                {a.name} ({a.endpointUrl ?? a.registryUrl})
              </option>
            ))}
          </select>
        )}
      </Field>
      <Field label="Namespace" hint="Optional, e.g. a team or project">
        {({ id, describedBy }) => <input id={id} aria-describedby={describedBy} value={namespace} onInput={(e) => setNamespace(e.currentTarget.value)} />}
      </Field>
      <Field label="Repository">{({ id }) => <input id={id} required value={repository} onInput={(e) => setRepository(e.currentTarget.value)} />}</Field>
      <Field label="Tag">{({ id }) => <input id={id} required value={tag} onInput={(e) => setTag(e.currentTarget.value)} />}</Field>
    </Dialog>
  );
}

/** Every image of the user, newest first. */
export function ImagesPage(props: { login: string }): JSX.Element {
  const images = useData(`images:${props.login}`, () => api<{ images?: Image[] }>("GET", `users/${props.login}/images?orderBy=created&descending=true`));
  const all = useCallback(() => true, []);
  const pubs = usePublications(props.login, all);
  const known = new Set((images.data?.images ?? []).map((i) => i.uri));
  useLiveRefresh(
    useCallback((e: StatusEvent) => e.kind === "generate", []),
    (uri) => known.has(uri),
    images.reload,
  );
  const list = images.data?.images ?? [];
  return (
    <Page title="Images">
      <ErrorText message={images.error ?? pubs.error} />
      {!images.data && !images.error && <Loading what="your images" />}
      {images.data && list.length === 0 && (
        <p class="empty">
          No images yet: open a bundle in the <Link href="/library">Software library</Link>, make a container template and generate one.
        </p>
      )}
      {list.length > 0 && (
        <ul class="images" aria-label="Images">
          {list.map((img) => (
            <ImageItem
              key={img.uri}
              login={props.login}
              image={img}
              heading={
                <h2 class="h3">
                  <Link href={imagePath(img.uri)}>
                    {img.name}
                    {img.version ? ` ${img.version}` : ""} · revision {img.revision}
                  </Link>{" "}
                  <span class="muted small">{img.distributionName}</span>
                </h2>
              }
              publications={pubs.byImage.get(img.uri) ?? []}
              onChange={images.reload}
              onPublished={pubs.reload}
            />
          ))}
        </ul>
      )}
    </Page>
  );
}

/** One image: what it is, its status and actions, its publications and its packages. */
export function ImagePage(props: { login: string; msid: string; tid: string; iid: string }): JSX.Element {
  const uri = `users/${props.login}/mysoftware/${props.msid}/templates/${props.tid}/images/${props.iid}`;
  const image = useData(`image:${uri}`, () => api<Image>("GET", uri));
  const mine = useCallback((u: string) => u === uri, [uri]);
  const pubs = usePublications(props.login, mine);
  useLiveRefresh(
    useCallback((e: StatusEvent) => e.uri === uri, [uri]),
    () => false,
    image.reload,
  );
  const img = image.data;
  const status = useLiveStatus(uri, img?.status ?? { percentage: 0, complete: false, error: false, cancelled: false });
  const pkgs = useData(`pkgs:${uri}:${status.state}`, () =>
    status.state === "complete" ? api<{ imagePkgs?: ImagePackage[] }>("GET", `${uri}/pkgs`) : Promise.resolve(undefined),
  );
  if (!img) {
    return (
      <Page title="Image">
        <ErrorText message={image.error} />
        {!image.error && <Loading what="the image" />}
      </Page>
    );
  }
  const packages = pkgs.data?.imagePkgs ?? [];
  return (
    <Page title={`${img.name} revision ${img.revision}`} heading={<>{img.name}{img.version ? ` ${img.version}` : ""} · revision {img.revision}</>}>
      <nav aria-label="Breadcrumb" class="crumbs">
        <Link href="/library">Software library</Link> › <Link href={`/library/${props.msid}`}>{img.name}</Link> ›{" "}
        <Link href={`/library/${props.msid}/templates/${props.tid}`}>{img.distributionName ?? "template"}</Link> › <span aria-current="page">revision {img.revision}</span>
      </nav>
      <dl class="facts">
        <dt>Format</dt>
        <dd>{img.targetFormat.name}{img.compress ? ", compressed" : ""}</dd>
        <dt>Distribution</dt>
        <dd>{img.distributionName}</dd>
        <dt>Entrypoint</dt>
        <dd class="mono">{img.entrypoint ?? "none"}</dd>
        <dt>Created</dt>
        <dd>{formatDate(img.created)}</dd>
        {img.completeInstalledSize !== undefined && (
          <>
            <dt>Installed size</dt>
            <dd>{formatBytes(img.completeInstalledSize)}</dd>
          </>
        )}
        {img.sha256sum && (
          <>
            <dt>File sha256</dt>
            <dd class="mono small">{img.sha256sum}</dd>
          </>
        )}
      </dl>
      <ul class="images" aria-label="Image">
        <ImageItem login={props.login} image={img} heading={<h2 class="h3">Status</h2>} publications={pubs.byImage.get(uri) ?? []} onChange={image.reload} onPublished={pubs.reload} />
      </ul>
      <section aria-labelledby="pkgs-title">
        <h2 id="pkgs-title">Packages</h2>
        <ErrorText message={pkgs.error} />
        {status.state !== "complete" && <p class="muted">The packages are listed once the image is complete.</p>}
        {packages.length > 0 && (
          <div class="table-wrap">
            <table>
              <caption class="muted">{packages.length} packages</caption>
              <thead>
                <tr>
                  <th scope="col">Package</th>
                  <th scope="col">Version</th>
                  <th scope="col">Architecture</th>
                  <th scope="col">From</th>
                </tr>
              </thead>
              <tbody>
                {packages.map((p) => (
                  <tr key={p.pkg.name}>
                    <td>{p.pkg.name}</td>
                    <td class="mono">{p.pkg.version}</td>
                    <td>{p.pkg.arch}</td>
                    <td>{p.native_from_distribution ? "distribution" : "bundle"}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
    </Page>
  );
}
