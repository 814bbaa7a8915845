/**
 * Live status: one EventSource per page on `/api/users/<login>/events`. Each event is the latest
 * state of one generation or publication; views ask for the status of the object they show and
 * get whichever is newer, the one they fetched or the one the stream brought.
 */
import { useEffect, useRef, useState } from "preact/hooks";
import type { OpStatus } from "./api.js";

/** What the server sends (server/events.ts). */
export interface StatusEvent {
  job: number;
  kind: "generate" | "publish";
  uri: string;
  imageUri: string;
  state: "queued" | "running" | "complete" | "error" | "cancelled";
  percentage: number;
  message: string | null;
  errorMessage: string | null;
  eta: string | null;
  bytesLoaded: number | null;
  bytesTotal: number | null;
  lastModified: string;
}

/** The status of a job as the console shows it. */
export interface LiveStatus {
  state: StatusEvent["state"];
  percentage: number;
  message: string;
  errorMessage: string;
  eta: string | undefined;
  bytesLoaded: number | undefined;
  bytesTotal: number | undefined;
  lastModified: number;
}

export const ENDED = new Set<LiveStatus["state"]>(["complete", "error", "cancelled"]);

export function fromOpStatus(s: OpStatus): LiveStatus {
  const state: LiveStatus["state"] = s.complete ? "complete" : s.error ? "error" : s.cancelled ? "cancelled" : s.message === "queued" || (s.message ?? "").startsWith("queued") ? "queued" : "running";
  return {
    state,
    percentage: s.percentage,
    message: s.message ?? state,
    errorMessage: s.errorMessage ?? "",
    eta: s.eta,
    bytesLoaded: s.bytesLoaded,
    bytesTotal: s.bytesTotal,
    lastModified: s.lastModified ? Date.parse(s.lastModified) : 0,
  };
}

function fromEvent(e: StatusEvent): LiveStatus {
  return {
    state: e.state,
    percentage: e.percentage,
    message: e.message ?? e.state,
    errorMessage: e.errorMessage ?? "",
    eta: e.eta ?? undefined,
    bytesLoaded: e.bytesLoaded ?? undefined,
    bytesTotal: e.bytesTotal ?? undefined,
    lastModified: Date.parse(e.lastModified),
  };
}

const latest = new Map<string, StatusEvent>();
const listeners = new Set<(e: StatusEvent | "reconnected") => void>();
let source: EventSource | undefined;

/** Opens the stream for `login` (once), or closes it (`undefined`). */
export function connectLive(login: string | undefined, lost: () => void): void {
  source?.close();
  source = undefined;
  latest.clear();
  if (!login) return;
  const es = new EventSource(`/api/users/${encodeURIComponent(login)}/events`);
  let opened = false;
  es.addEventListener("open", () => {
    // After a break, what was missed is fetched again by the views.
    if (opened) for (const l of listeners) l("reconnected");
    opened = true;
  });
  es.addEventListener("status", (m) => {
    const e = JSON.parse((m as MessageEvent<string>).data) as StatusEvent;
    latest.set(e.uri, e);
    for (const l of listeners) l(e);
  });
  es.addEventListener("error", () => {
    // The browser retries by itself unless the server refused the stream (session over).
    if (es.readyState === EventSource.CLOSED) lost();
  });
  source = es;
}

/** The newest status of the job behind `uri`: the fetched one, or what the stream said since. */
export function useLiveStatus(uri: string, fetched: OpStatus): LiveStatus {
  const base = fromOpStatus(fetched);
  const pick = (): LiveStatus => {
    const e = latest.get(uri);
    if (!e) return base;
    const live = fromEvent(e);
    // The stream's word wins unless the fetch is newer (or the job ended there).
    return live.lastModified >= base.lastModified || (ENDED.has(live.state) && !ENDED.has(base.state)) ? live : base;
  };
  const [, setTick] = useState(0);
  useEffect(() => {
    const l = (e: StatusEvent | "reconnected"): void => {
      if (e !== "reconnected" && e.uri === uri) setTick((t) => t + 1);
    };
    listeners.add(l);
    return () => void listeners.delete(l);
  }, [uri]);
  return pick();
}

/**
 * Calls `refresh` when something the view lists changes in a way its fetched copy cannot show:
 * a job it does not know about starts, one ends (a download link, a publication's location), or
 * the stream reconnects.
 */
export function useLiveRefresh(concerns: (e: StatusEvent) => boolean, known: (uri: string) => boolean, refresh: () => void): void {
  const current = useRef({ concerns, known, refresh });
  current.current = { concerns, known, refresh };
  useEffect(() => {
    let timer: number | undefined;
    const later = (): void => {
      if (timer === undefined) timer = window.setTimeout(() => ((timer = undefined), current.current.refresh()), 150);
    };
    const l = (e: StatusEvent | "reconnected"): void => {
      const c = current.current;
      if (e === "reconnected") later();
      else if (c.concerns(e) && (!c.known(e.uri) || ENDED.has(e.state))) later();
    };
    listeners.add(l);
    return () => {
      listeners.delete(l);
      if (timer !== undefined) clearTimeout(timer);
    };
  }, []);
}
