/**
 * The console's small kit: client-side routes, links, dialogs, alerts, a data-loading hook and
 * the status of a job as every list shows it.
 */
import type { ComponentChildren, JSX } from "preact";
import { useCallback, useEffect, useId, useRef, useState } from "preact/hooks";
import { messageOf } from "./api.js";
import type { LiveStatus } from "./live.js";

// ---- Routes -------------------------------------------------------------------------------------

const routeListeners = new Set<() => void>();

export function navigate(to: string, replace = false): void {
  if (to === location.pathname) return;
  if (replace) history.replaceState(null, "", to);
  else history.pushState(null, "", to);
  for (const l of routeListeners) l();
  // A new page: its heading takes the focus (see Page), and the view starts at the top.
  window.scrollTo(0, 0);
}

window.addEventListener("popstate", () => {
  for (const l of routeListeners) l();
});

export function usePath(): string {
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    const l = (): void => setPath(location.pathname);
    routeListeners.add(l);
    return () => void routeListeners.delete(l);
  }, []);
  return path;
}

export function Link(props: { href: string; children: ComponentChildren; class?: string; "aria-current"?: "page" | undefined }): JSX.Element {
  const onClick = (e: MouseEvent): void => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(props.href);
  };
  return (
    <a href={props.href} class={props.class} aria-current={props["aria-current"]} onClick={onClick}>
      {props.children}
    </a>
  );
}

/** A page: its title in the tab, and its heading focused when it opens (screen readers announce it). */
export function Page(props: { title: string; heading?: ComponentChildren; children: ComponentChildren; actions?: ComponentChildren }): JSX.Element {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    document.title = `${props.title} · Kiln`;
  }, [props.title]);
  useEffect(() => {
    ref.current?.focus({ preventScroll: true });
  }, []);
  return (
    <>
      <div class="page-head">
        <h1 tabIndex={-1} ref={ref}>
          {props.heading ?? props.title}
        </h1>
        {props.actions && <div class="actions">{props.actions}</div>}
      </div>
      {props.children}
    </>
  );
}

// ---- Data ---------------------------------------------------------------------------------------

export interface Loaded<T> {
  data: T | undefined;
  error: string | undefined;
  reload: () => void;
}

/** Loads `fetcher()` when `key` changes; `reload()` fetches again and keeps the old data meanwhile. */
export function useData<T>(key: string, fetcher: () => Promise<T>): Loaded<T> {
  const [state, setState] = useState<{ key: string; data?: T; error?: string }>({ key });
  const seq = useRef(0);
  const fetcherRef = useRef(fetcher);
  fetcherRef.current = fetcher;
  const load = useCallback(() => {
    const mine = ++seq.current;
    fetcherRef.current().then(
      (data) => mine === seq.current && setState({ key, data }),
      (err: unknown) => mine === seq.current && setState((s) => ({ ...s, key, error: messageOf(err) })),
    );
  }, [key]);
  useEffect(load, [load]);
  const current = state.key === key;
  return { data: current ? state.data : undefined, error: current ? state.error : undefined, reload: load };
}

// ---- Feedback -----------------------------------------------------------------------------------

export function ErrorText(props: { message: string | undefined; id?: string }): JSX.Element | null {
  if (!props.message) return null;
  return (
    <p role="alert" class="error" id={props.id}>
      {props.message}
    </p>
  );
}

export function Loading(props: { what: string }): JSX.Element {
  return (
    <p class="muted" role="status">
      Loading {props.what}…
    </p>
  );
}

// ---- Dialogs ------------------------------------------------------------------------------------

/**
 * A modal dialog (the native `<dialog>`: focus moves in and stays in, Escape closes it, the page
 * behind is inert). `onSubmit` runs on the form's submit; errors are shown in the dialog.
 */
export function Dialog(props: {
  title: string;
  submitLabel: string;
  onClose: () => void;
  onSubmit: () => Promise<void>;
  canSubmit?: boolean;
  children: ComponentChildren;
}): JSX.Element {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  useEffect(() => {
    const d = ref.current!;
    if (!d.open) d.showModal();
    return () => d.open && d.close();
  }, []);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    if (busy) return;
    setBusy(true);
    setError(undefined);
    try {
      await props.onSubmit();
    } catch (err) {
      setError(messageOf(err));
      setBusy(false);
    }
  };
  return (
    <dialog ref={ref} aria-labelledby={titleId} onCancel={(e) => (e.preventDefault(), props.onClose())}>
      <form onSubmit={submit} noValidate>
        <h2 id={titleId}>{props.title}</h2>
        {props.children}
        <ErrorText message={error} />
        <div class="buttons">
          <button type="submit" class="primary" disabled={busy || props.canSubmit === false}>
            {props.submitLabel}
          </button>
          <button type="button" onClick={props.onClose}>
            Cancel
          </button>
        </div>
      </form>
    </dialog>
  );
}

/** Asks before something that cannot be undone. */
export function ConfirmButton(props: { label: string; name: string; question: string; confirmLabel: string; onConfirm: () => Promise<void> }): JSX.Element {
  const [open, setOpen] = useState(false);
  return (
    <>
      <button type="button" class="danger" aria-label={props.name} onClick={() => setOpen(true)}>
        {props.label}
      </button>
      {open && (
        <Dialog
          title={props.question}
          submitLabel={props.confirmLabel}
          onClose={() => setOpen(false)}
          onSubmit={async () => {
            await props.onConfirm();
            setOpen(false);
          }}
        >
          <p>This cannot be undone.</p>
        </Dialog>
      )}
    </>
  );
}

/** A labelled field: the label names the control (what tests and screen readers find it by). */
export function Field(props: { label: string; hint?: string; error?: string | undefined; children: (ids: { id: string; describedBy: string | undefined }) => ComponentChildren }): JSX.Element {
  const id = useId();
  const hintId = `${id}-hint`;
  const errorId = `${id}-error`;
  const describedBy = [props.hint ? hintId : "", props.error ? errorId : ""].filter(Boolean).join(" ") || undefined;
  return (
    <div class="field">
      <label for={id}>{props.label}</label>
      {props.children({ id, describedBy })}
      {props.hint && (
        <p class="hint" id={hintId}>
          {props.hint}
        </p>
      )}
      {props.error && (
        <p class="field-error" id={errorId}>
          {props.error}
        </p>
      )}
    </div>
  );
}

// ---- Job status ---------------------------------------------------------------------------------

export function formatBytes(n: number | undefined): string {
  if (n === undefined) return "";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let v = n;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v < 10 && i > 0 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

export function formatDate(iso: string | undefined): string {
  if (!iso) return "";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

/** A job's state in words: a bar, the percentage and the phase while it runs; the outcome after. */
export function JobStatus(props: { status: LiveStatus; label: string }): JSX.Element {
  const s = props.status;
  if (s.state === "complete") return <span class="status status-complete">complete</span>;
  if (s.state === "cancelled") return <span class="status status-cancelled">cancelled</span>;
  if (s.state === "error")
    return (
      <span class="status status-error">
        error<span class="status-message">: {s.errorMessage || s.message}</span>
      </span>
    );
  const bytes = s.bytesTotal ? ` (${formatBytes(s.bytesLoaded ?? 0)} of ${formatBytes(s.bytesTotal)})` : "";
  const eta = s.eta ? `, about ${Math.max(1, Math.round((Date.parse(s.eta) - Date.now()) / 1000))} s left` : "";
  return (
    <span class="status status-running">
      <progress max={100} value={s.percentage} aria-label={props.label} />
      <span>
        {s.percentage}% · {s.message}
        {bytes}
        {eta}
      </span>
    </span>
  );
}
