/** The software library: every bundle of the user, and "New bundle". */
import type { JSX } from "preact";
import { useMemo, useState } from "preact/hooks";
import { api, type Bundle } from "../api.js";
import { Dialog, ErrorText, Field, Link, Loading, Page, formatDate, navigate, useData } from "../ui.js";

interface BundleList {
  total: number;
  mySoftwareList?: Bundle[];
}

/** Bundle id from its uri (`users/alice/mysoftware/3`). */
export const bundleId = (uri: string): string => uri.split("/").pop()!;

export function Library(props: { login: string }): JSX.Element {
  const list = useData(`library:${props.login}`, () => api<BundleList>("GET", `users/${props.login}/mysoftware?orderBy=name`));
  const [creating, setCreating] = useState(false);
  const [filter, setFilter] = useState("");
  const bundles = list.data?.mySoftwareList ?? [];
  const shown = useMemo(() => {
    const q = filter.trim().toLowerCase();
    return q ? bundles.filter((b) => `${b.name} ${b.version ?? ""} ${b.description ?? ""}`.toLowerCase().includes(q)) : bundles;
  }, [bundles, filter]);
  return (
    <Page
      title="Software library"
      actions={
        <button type="button" class="primary" onClick={() => setCreating(true)}>
          New bundle
        </button>
      }
    >
      <ErrorText message={list.error} />
      {!list.data && !list.error && <Loading what="your bundles" />}
      {list.data && bundles.length === 0 && <p class="empty">Your library is empty. A bundle holds the files, archives and packages you put into images: start with “New bundle”.</p>}
      {bundles.length > 10 && (
        <div class="filter">
          <label for="bundle-filter">Filter bundles</label>
          <input id="bundle-filter" type="search" value={filter} onInput={(e) => setFilter(e.currentTarget.value)} />
          <span class="muted" role="status">
            {shown.length} of {bundles.length}
          </span>
        </div>
      )}
      {shown.length > 0 && (
        <ul class="cards" aria-label="Bundles">
          {shown.map((b) => (
            <li key={b.uri}>
              <Link href={`/library/${bundleId(b.uri)}`} class="card-title">
                {b.name}
              </Link>
              <span class="muted">{b.version ? `version ${b.version}` : "no version"}</span>
              {b.description && <p>{b.description}</p>}
              <span class="muted small">changed {formatDate(b.lastModified)}</span>
            </li>
          ))}
        </ul>
      )}
      {creating && <NewBundle login={props.login} onClose={() => setCreating(false)} />}
    </Page>
  );
}

function NewBundle(props: { login: string; onClose: () => void }): JSX.Element {
  const [name, setName] = useState("");
  const [version, setVersion] = useState("");
  const [description, setDescription] = useState("");
  return (
    <Dialog
      title="New bundle"
      submitLabel="Create bundle"
      canSubmit={name.trim() !== ""}
      onClose={props.onClose}
      onSubmit={async () => {
        const b = await api<Bundle>("POST", `users/${props.login}/mysoftware`, {
          name: name.trim(),
          ...(version.trim() ? { version: version.trim() } : {}),
          ...(description.trim() ? { description: description.trim() } : {}),
        });
        navigate(`/library/${bundleId(b.uri)}`);
      }}
    >
      <Field label="Name">{({ id }) => <input id={id} required value={name} onInput={(e) => setName(e.currentTarget.value)} />}</Field>
      <Field label="Version">{({ id }) => <input id={id} value={version} onInput={(e) => setVersion(e.currentTarget.value)} />}</Field>
      <Field label="Description">{({ id }) => <textarea id={id} rows={2} value={description} onInput={(e) => setDescription(e.currentTarget.value)} />}</Field>
    </Dialog>
  );
}
