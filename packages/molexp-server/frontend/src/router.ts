// Minimal hash router: "#/path/segments?query" -> route + query, with helpers to build links.
import { useEffect, useState } from "react";
import type { RunKey } from "./api";

export interface Location {
  segments: string[];
  query: URLSearchParams;
}

function parse(hash: string): Location {
  const raw = hash.replace(/^#/, "");
  const [path, search = ""] = raw.split("?", 2);
  const segments = path
    .split("/")
    .filter((part) => part !== "")
    .map((part) => decodeURIComponent(part));
  return { segments, query: new URLSearchParams(search) };
}

export function useLocation(): Location {
  const [location, setLocation] = useState(() => parse(window.location.hash));
  useEffect(() => {
    const update = () => setLocation(parse(window.location.hash));
    window.addEventListener("hashchange", update);
    return () => window.removeEventListener("hashchange", update);
  }, []);
  return location;
}

export function href(segments: string[], query?: Record<string, string | undefined>): string {
  const path = segments.map((part) => encodeURIComponent(part)).join("/");
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== "") search.set(key, value);
  }
  const text = search.toString();
  return `#/${path}${text ? `?${text}` : ""}`;
}

/** Replace the current entry (filters and sorting should not flood the history). */
export function replaceHash(target: string): void {
  window.history.replaceState(null, "", target);
  window.dispatchEvent(new HashChangeEvent("hashchange"));
}

export const links = {
  overview: () => href([]),
  project: (project: string) => href(["p", project]),
  experiment: (project: string, experiment: string) => href(["p", project, "e", experiment]),
  run: (run: RunKey) => href(["runs", run.id], { p: run.project, e: run.experiment }),
  compare: (project: string, experiment: string, runs: string[]) =>
    href(["p", project, "e", experiment, "compare"], { runs: runs.join(",") }),
  /** Runs of any experiments: each ref is project/experiment/run_id. */
  compareRuns: (refs: string[]) => href(["compare"], { runs: refs.join(",") }),
  sweep: (project: string, experiment: string) => href(["p", project, "e", experiment, "sweep"]),
};
