/**
 * A bundle: its files (folders as a tree), uploads (file input or drag and drop, with progress),
 * its restriction rule (checked as you type, the error shown at its position), and its
 * container templates.
 */
import type { JSX } from "preact";
import { useMemo, useState } from "preact/hooks";
import { parseRestrictionRule } from "../../../src/domain/restriction.js";
import { api, distributionLabel, messageOf, upload, type Artifact, type Bundle, type Distribution, type Template } from "../api.js";
import { ConfirmButton, Dialog, ErrorText, Field, Link, Loading, Page, formatBytes, navigate, useData } from "../ui.js";

const ARCHIVE = /\.(tar|tar\.gz|tgz|tar\.bz2|tbz2|tar\.xz|txz|zip|gz)$/i;

interface Upload {
  key: number;
  name: string;
  fraction: number;
  error?: string;
}

let uploadSeq = 0;

export function BundlePage(props: { login: string; msid: string }): JSX.Element {
  const base = `users/${props.login}/mysoftware/${props.msid}`;
  const bundle = useData(`bundle:${base}`, () => api<Bundle>("GET", base));
  const artifacts = useData(`artifacts:${base}`, () => api<{ softwareArtifacts?: Artifact[] }>("GET", `${base}/artifacts`));
  const templates = useData(`templates:${base}`, () => api<{ containerTemplates?: Template[] }>("GET", `${base}/templates`));
  const [creating, setCreating] = useState(false);
  const b = bundle.data;
  if (bundle.error && !b) {
    return (
      <Page title="Bundle">
        <ErrorText message={bundle.error} />
      </Page>
    );
  }
  if (!b) return <Loading what="the bundle" />;
  return (
    <Page
      title={b.name}
      heading={
        <>
          {b.name} {b.version && <span class="muted">{b.version}</span>}
        </>
      }
      actions={
        <ConfirmButton
          label="Delete bundle"
          name="Delete bundle"
          question={`Delete the bundle ${b.name}, its files, templates and images?`}
          confirmLabel="Delete"
          onConfirm={async () => {
            await api("DELETE", base);
            navigate("/library");
          }}
        />
      }
    >
      <nav aria-label="Breadcrumb" class="crumbs">
        <Link href="/library">Software library</Link> › <span aria-current="page">{b.name}</span>
      </nav>
      {b.description && <p>{b.description}</p>}

      <section aria-labelledby="files-title">
        <h2 id="files-title">Files</h2>
        <ErrorText message={artifacts.error} />
        {artifacts.data && (artifacts.data.softwareArtifacts ?? []).length === 0 && <p class="empty">No files yet.</p>}
        {artifacts.data && <ArtifactTree items={artifacts.data.softwareArtifacts ?? []} label="Files of the bundle" onChange={artifacts.reload} />}
        <Uploader base={base} onUploaded={artifacts.reload} />
      </section>

      <RestrictionRule bundle={b} onSaved={bundle.reload} />

      <section aria-labelledby="templates-title">
        <div class="section-head">
          <h2 id="templates-title">Container templates</h2>
          <button type="button" class="primary" onClick={() => setCreating(true)}>
            New template
          </button>
        </div>
        <p class="hint">A template puts this bundle on a distribution; images are generated from it.</p>
        <ErrorText message={templates.error} />
        {!templates.data && !templates.error && <Loading what="templates" />}
        {templates.data && (templates.data.containerTemplates ?? []).length === 0 && <p class="empty">No templates yet.</p>}
        {templates.data && (templates.data.containerTemplates ?? []).length > 0 && (
          <ul class="cards" aria-label="Container templates">
            {(templates.data.containerTemplates ?? []).map((t) => (
              <li key={t.uri}>
                <Link href={`/library/${props.msid}/templates/${t.dbId}`} class="card-title">
                  {distributionLabel(t.distribution)}
                </Link>
                <span class="muted">
                  {t.images.length} image{t.images.length === 1 ? "" : "s"}
                </span>
              </li>
            ))}
          </ul>
        )}
      </section>
      {creating && <NewTemplate base={base} bundle={b} msid={props.msid} onClose={() => setCreating(false)} />}
    </Page>
  );
}

function ArtifactTree(props: { items: Artifact[]; label?: string; onChange: () => void }): JSX.Element | null {
  if (props.items.length === 0) return null;
  return (
    <ul class="tree" aria-label={props.label}>
      {props.items.map((a) => (
        <li key={a.uri}>
          <span class={a.type === "folder" ? "folder" : "file"}>
            <span class="name">{a.name}</span>
            {a.type === "file" && <span class="muted small">{a.uploaded ? formatBytes(a.size) : "not uploaded"}</span>}
            {a.extract && <span class="tag">extract</span>}
            {a.install && <span class="tag">install</span>}
            {a.installLocation && <span class="muted small">→ {a.installLocation}</span>}
            <ConfirmButton label="Delete" name={`Delete ${a.name}`} question={`Delete ${a.name}${a.type === "folder" ? " and everything in it" : ""}?`} confirmLabel="Delete" onConfirm={async () => {
              await api("DELETE", a.uri);
              props.onChange();
            }} />
          </span>
          {a.type === "folder" && <ArtifactTree items={a.subSoftwareArtifacts ?? []} onChange={props.onChange} />}
        </li>
      ))}
    </ul>
  );
}

/** Choosing (or dropping) files starts their upload: an artifact each, then its bytes. */
function Uploader(props: { base: string; onUploaded: () => void }): JSX.Element {
  const [uploads, setUploads] = useState<Upload[]>([]);
  const [extract, setExtract] = useState(true);
  const [location, setLocation] = useState("");
  const [dragging, setDragging] = useState(false);
  const update = (key: number, patch: Partial<Upload>): void => setUploads((us) => us.map((u) => (u.key === key ? { ...u, ...patch } : u)));

  const send = async (file: File): Promise<void> => {
    const key = ++uploadSeq;
    setUploads((us) => [...us, { key, name: file.name, fraction: 0 }]);
    const deb = /\.deb$/i.test(file.name);
    let created: Artifact | undefined;
    try {
      created = await api<Artifact>("POST", `${props.base}/artifacts`, {
        name: file.name,
        ...(deb ? { tag: "ospkg", install: true } : { tag: "softwarefile", extract: extract && ARCHIVE.test(file.name) }),
        ...(location.trim() && !deb ? { installLocation: location.trim() } : {}),
      });
      await upload(`${created.uri}/bin/${encodeURIComponent(file.name)}`, file, (fraction) => update(key, { fraction }));
      setUploads((us) => us.filter((u) => u.key !== key));
      props.onUploaded();
    } catch (err) {
      // An artifact without its bytes would block every generation: it goes with the failed upload.
      if (created) await api("DELETE", created.uri).catch(() => undefined);
      update(key, { error: messageOf(err) });
    }
  };
  const start = (files: FileList | null): void => {
    if (!files) return;
    for (const f of Array.from(files)) void send(f);
  };

  return (
    <div
      class={`dropzone${dragging ? " dragging" : ""}`}
      onDragOver={(e) => {
        e.preventDefault();
        setDragging(true);
      }}
      onDragLeave={() => setDragging(false)}
      onDrop={(e) => {
        e.preventDefault();
        setDragging(false);
        start(e.dataTransfer?.files ?? null);
      }}
    >
      <div class="upload-row">
        <div class="field">
          <label for="upload-file">Upload file</label>
          <input
            id="upload-file"
            type="file"
            multiple
            aria-describedby="upload-hint"
            onChange={(e) => {
              start(e.currentTarget.files);
              e.currentTarget.value = "";
            }}
          />
        </div>
        <label class="check">
          <input type="checkbox" checked={extract} onChange={(e) => setExtract(e.currentTarget.checked)} /> Extract archives
        </label>
        <div class="field">
          <label for="upload-location">Install location</label>
          <input id="upload-location" placeholder="/opt/<bundle>" value={location} onInput={(e) => setLocation(e.currentTarget.value)} />
        </div>
      </div>
      <p class="hint" id="upload-hint">
        Choose several files, or drop them here. Archives (.tar.gz, .zip, …) are unpacked at the install location when “Extract archives” is on; .deb packages are installed with their dependencies.
      </p>
      {uploads.length > 0 && (
        <ul class="uploads" aria-label="Uploads">
          {uploads.map((u) => (
            <li key={u.key}>
              <span class="name">{u.name}</span>
              {u.error ? (
                <span role="alert" class="error">
                  {u.error}
                </span>
              ) : (
                <>
                  <progress max={100} value={Math.round(u.fraction * 100)} aria-label={`Uploading ${u.name}`} />
                  <span>{Math.round(u.fraction * 100)}%</span>
                </>
              )}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

/** The rule, checked with the server's own parser as it is typed; the API checks it again on save. */
function RestrictionRule(props: { bundle: Bundle; onSaved: () => void }): JSX.Element {
  const saved = props.bundle.bundleRestriction.restrictionRule ?? "";
  const [rule, setRule] = useState(saved);
  const [serverError, setServerError] = useState<string>();
  const [status, setStatus] = useState("");
  const problem = useMemo(() => {
    try {
      parseRestrictionRule(rule);
      return undefined;
    } catch (err) {
      const [message = "", , caretLine = ""] = messageOf(err).split("\n");
      return { message, position: caretLine.indexOf("^") };
    }
  }, [rule]);
  const save = async (e: Event): Promise<void> => {
    e.preventDefault();
    setServerError(undefined);
    setStatus("");
    try {
      await api("PUT", props.bundle.bundleRestriction.uri, { restrictionRule: rule });
      const allowed = await api<{ distributions?: Distribution[] }>("GET", `${props.bundle.bundleRestriction.uri}/distributions`);
      const names = (allowed.distributions ?? []).map(distributionLabel);
      setStatus(`Saved. Allowed on: ${names.length ? names.join(", ") : "no distribution"}.`);
      props.onSaved();
    } catch (err) {
      setServerError(messageOf(err));
    }
  };
  return (
    <section aria-labelledby="rule-title">
      <h2 id="rule-title">Restriction rule</h2>
      <form onSubmit={save} class="rule-form">
        <div class="field">
          <label for="rule">Restriction rule</label>
          <input
            id="rule"
            class="mono"
            spellcheck={false}
            value={rule}
            placeholder="empty: any distribution and format"
            aria-invalid={problem ? "true" : undefined}
            aria-describedby={problem ? "rule-error" : "rule-hint"}
            onInput={(e) => {
              setRule(e.currentTarget.value);
              setStatus("");
            }}
          />
          <p class="hint" id="rule-hint">
            For example <code>Distribution#name=Debian &amp;&amp; TargetFormat#name=Docker</code> (operators =, !=, &amp;&amp;, ||, !, parentheses; * matches anything).
          </p>
        </div>
        {problem && (
          <div role="alert" class="error rule-error" id="rule-error">
            <p>{problem.message}</p>
            <pre aria-hidden="true">
              {rule.slice(0, problem.position)}
              <mark>{rule.slice(problem.position, problem.position + 1) || " "}</mark>
              {rule.slice(problem.position + 1)}
            </pre>
          </div>
        )}
        <ErrorText message={serverError} />
        <div class="buttons">
          <button type="submit" disabled={!!problem || rule === saved}>
            Save rule
          </button>
          <span role="status" class="muted">
            {status}
          </span>
        </div>
      </form>
    </section>
  );
}

function NewTemplate(props: { base: string; bundle: Bundle; msid: string; onClose: () => void }): JSX.Element {
  const dists = useData(`dists:${props.bundle.bundleRestriction.uri}`, () => api<{ distributions?: Distribution[] }>("GET", `${props.bundle.bundleRestriction.uri}/distributions`));
  const [choice, setChoice] = useState("");
  const list = dists.data?.distributions ?? [];
  const selected = choice || list[0]?.uri || "";
  return (
    <Dialog
      title="New template"
      submitLabel="Create template"
      canSubmit={selected !== ""}
      onClose={props.onClose}
      onSubmit={async () => {
        const t = await api<Template>("POST", `${props.base}/templates`, { distribution: { uri: selected } });
        navigate(`/library/${props.msid}/templates/${t.dbId}`);
      }}
    >
      <ErrorText message={dists.error} />
      {dists.data && list.length === 0 && <p class="error">The bundle's restriction rule allows no distribution Kiln offers.</p>}
      <Field label="Distribution">
        {({ id }) => (
          <select id={id} value={selected} onChange={(e) => setChoice(e.currentTarget.value)}>
            {list.map((d) => (
              <option key={d.uri} value={d.uri}>
                {distributionLabel(d)}
              </option>
            ))}
          </select>
        )}
      </Field>
    </Dialog>
  );
}
