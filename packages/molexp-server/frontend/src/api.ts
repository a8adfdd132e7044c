// Typed client for the /api/v1 routes; the types mirror the server's pydantic response models.

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export interface BrokenRecord {
  path: string;
  error: string;
  broken: true;
}

export interface WorkspaceInfo {
  id: string;
  name: string;
  root: string;
  counts: { projects: number; experiments: number; runs: number; by_status: Record<string, number> };
  broken: BrokenRecord[];
  /** The server's first check of every record is still running: `broken` is empty until it ends. */
  broken_pending: boolean;
}

export interface ProjectInfo {
  id: string;
  name: string;
  description: string | null;
  tags: string[];
  created_at: string;
  experiment_count: number;
  run_count: number;
}

export interface ExperimentInfo {
  id: string;
  name: string;
  project_id: string;
  description: string | null;
  tags: string[];
  params: Record<string, Json>;
  n_replicas: number;
  workflow_source: string | null;
  git_commit: string | null;
  created_at: string;
  run_count: number;
  by_status: Record<string, number>;
  param_keys: string[];
  result_keys: string[];
  config_keys: string[];
  stale_count: number;
}

export interface ErrorDetail {
  type: string;
  message: string;
  task_name: string | null;
  traceback_path: string | null;
  occurred_at: string | null;
}

export interface RunSummary {
  id: string;
  project_id: string;
  experiment_id: string;
  status: string;
  created_at: string | null;
  started_at: string | null;
  finished_at: string | null;
  params: Record<string, Json>;
  results: Record<string, Json>;
  profile: string | null;
  config_hash: string | null;
  workflow_id: string | null;
  replica_index: number | null;
  profile_label: string | null;
  overrides: Record<string, Json>;
  config: Record<string, Json>;
  stale: boolean;
  stale_reason: string | null;
  /** The last value of each metric series the run logged. */
  metrics: Record<string, number>;
}

/** Every run of a project across its experiments, with the keys of their columns. */
export interface ProjectTable {
  project_id: string;
  runs: RunSummary[];
  total: number;
  truncated: boolean;
  experiments: string[];
  param_keys: string[];
  config_keys: string[];
  result_keys: string[];
  metric_keys: string[];
  profiles: string[];
}

export interface RunPage {
  items: RunSummary[];
  total: number;
  offset: number;
  limit: number;
  broken: BrokenRecord[];
  /** The server's first check of every record is still running: `broken` is empty until it ends. */
  broken_pending: boolean;
}

export interface AttemptInfo {
  execution_id: string;
  attempt: number;
  status: string;
  started_at: string | null;
  finished_at: string | null;
  duration_seconds: number | null;
  host: string | null;
  pid: number | null;
  python: string | null;
  python_version: string | null;
  /** Platform, CPUs, GPUs, Slurm ids and allow-listed variables, captured when it started. */
  environment: {
    implementation: string;
    platform: string;
    cpu_count: number | null;
    gpus: string[];
    slurm: Record<string, string>;
    variables: Record<string, string>;
  } | null;
  /** Versions of the installed distributions the attempt's tasks reached (filled in the attempt detail only). */
  distributions: Record<string, string>;
  profile_name: string | null;
  config_hash: string | null;
  error: ErrorDetail | null;
  scheduler: Record<string, Json> | null;
  /** Result keys added, removed or changed from the attempt before. */
  results_changed: number;
  /** Artifacts added, removed or changed (content hash) from the attempt before. */
  artifacts_changed: number;
}

export interface TaskState {
  name: string;
  status: string | null;
  started_at: string | null;
  finished_at: string | null;
  duration_seconds: number | null;
  error: string | null;
  extra: Record<string, Json>;
}

export interface RunDetail {
  id: string;
  project_id: string;
  experiment_id: string;
  status: string;
  created_at: string;
  updated_at: string;
  started_at: string | null;
  finished_at: string | null;
  params: Record<string, Json>;
  results: Record<string, Json>;
  config: Record<string, Json>;
  config_hash: string | null;
  profile: {
    name: string;
    config: Record<string, Json>;
    config_hash: string;
    overrides: Record<string, Json>;
    label: string;
  } | null;
  workflow_id: string | null;
  workflow_snapshot: Record<string, Json> | null;
  replica_index: number | null;
  seed: number | null;
  tags: string[];
  error: ErrorDetail | null;
  attempts: AttemptInfo[];
  tasks: TaskState[];
  execution_state_id: string | null;
  cancellable: boolean;
  stale: boolean;
  stale_reason: string | null;
}

export interface LogInfo {
  name: string;
  size: number;
  updated_at: string;
}

export interface LogChunk {
  text: string;
  offset: number;
  next_offset: number;
  size: number;
}

export interface MetricInfo {
  name: string;
  last: number;
  last_step: number;
  min: number;
  max: number;
  count: number;
}

export interface MetricSeries {
  name: string;
  total: number;
  downsampled: boolean;
  steps: number[];
  values: number[];
  timestamps: number[];
  attempts: number[];
}

export interface ArtifactInfo {
  name: string;
  media_type: string;
  size: number;
  updated_at: string;
  asset_id: string | null;
  /** The attempt that saved it. */
  attempt: number | null;
  content_hash: string | null;
}

export type Change = "added" | "removed" | "changed";

export interface ResultChange {
  key: string;
  change: Change;
  before: Json;
  after: Json;
}

export interface ArtifactChange {
  name: string;
  change: Change;
  before_hash: string | null;
  after_hash: string | null;
  before_size: number | null;
  after_size: number | null;
}

export interface AttemptDiff {
  before: number | null;
  after: number;
  results: ResultChange[];
  artifacts: ArtifactChange[];
}

/** One attempt: results and artifacts as it left them, its own logs and what changed. */
export interface AttemptDetail {
  attempt: AttemptInfo;
  latest: boolean;
  results: Record<string, Json>;
  own_results: Record<string, Json> | null;
  artifacts: ArtifactInfo[];
  logs: LogInfo[];
  checkpoints: number;
  tasks: TaskState[];
  changes: AttemptDiff;
}

export interface CompareRow {
  key: string;
  section:
    | "param"
    | "profile"
    | "config"
    | "result"
    | "workflow"
    | "git"
    | "code"
    | "python"
    | "environment"
    | "distributions";
  values: Json[];
  differs: boolean;
}

/** The unified diff of a task's recorded source between the first compared run and another. */
export interface CodeDiff {
  task: string;
  base: string;
  run: string;
  diff: string;
}

export interface CompareTable {
  runs: RunSummary[];
  rows: CompareRow[];
  code_diffs: CodeDiff[];
  metrics: string[];
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const BASE = "/api/v1";

async function request<T>(path: string, init?: RequestInit): Promise<T> {
  const response = await fetch(BASE + path, { credentials: "same-origin", ...init });
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      const body = (await response.json()) as { detail?: unknown };
      if (typeof body.detail === "string") message = body.detail;
      else if (body.detail !== undefined) message = JSON.stringify(body.detail);
    } catch {
      // The body was not JSON; the status line is the best message we have.
    }
    throw new ApiError(response.status, message);
  }
  return (await response.json()) as T;
}

function query(params: Record<string, string | number | undefined | null>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

const seg = encodeURIComponent;

export interface RunQuery {
  where?: string;
  status?: string;
  order_by?: string;
  limit?: number;
  offset?: number;
}

/** A run named by id plus, when known, its project and experiment (run ids may repeat). */
export interface RunKey {
  id: string;
  project?: string;
  experiment?: string;
}

export function runKeyOf(run: { id: string; project_id: string; experiment_id: string }): RunKey {
  return { id: run.id, project: run.project_id, experiment: run.experiment_id };
}

function runPath(run: RunKey, rest = ""): string {
  return `/runs/${seg(run.id)}${rest}`;
}

function runQuery(run: RunKey, extra: Record<string, string | number | undefined> = {}): string {
  return query({ project: run.project, experiment: run.experiment, ...extra });
}

export const api = {
  workspace: () => request<WorkspaceInfo>("/workspace"),
  projects: () => request<ProjectInfo[]>("/projects"),
  projectRuns: (project: string) => request<ProjectTable>(`/projects/${seg(project)}/runs`),
  experiments: (project: string) => request<ExperimentInfo[]>(`/projects/${seg(project)}/experiments`),
  experiment: (project: string, experiment: string) =>
    request<ExperimentInfo>(`/projects/${seg(project)}/experiments/${seg(experiment)}`),
  experimentRuns: (project: string, experiment: string, q: RunQuery) =>
    request<RunPage>(
      `/projects/${seg(project)}/experiments/${seg(experiment)}/runs${query({ ...q })}`,
    ),
  runs: (q: RunQuery) => request<RunPage>(`/runs${query({ ...q })}`),
  run: (run: RunKey) => request<RunDetail>(runPath(run) + runQuery(run)),
  cancel: (run: RunKey) => request<RunDetail>(runPath(run, "/cancel") + runQuery(run), { method: "POST" }),
  attempt: (run: RunKey, attempt: number) =>
    request<AttemptDetail>(runPath(run, `/attempts/${attempt}`) + runQuery(run)),
  logs: (run: RunKey, attempt?: number) =>
    request<LogInfo[]>(runPath(run, "/logs") + runQuery(run, { attempt })),
  log: (run: RunKey, name: string, since: number, attempt?: number) =>
    request<LogChunk>(runPath(run, `/logs/${seg(name)}`) + runQuery(run, { since, attempt })),
  logStreamUrl: (run: RunKey, name: string, since: number, attempt?: number) =>
    BASE + runPath(run, `/logs/${seg(name)}/stream`) + runQuery(run, { since, attempt }),
  metrics: (run: RunKey) => request<MetricInfo[]>(runPath(run, "/metrics") + runQuery(run)),
  metric: (run: RunKey, name: string, points: number) =>
    request<MetricSeries>(runPath(run, `/metrics/${seg(name)}`) + runQuery(run, { points })),
  artifacts: (run: RunKey, attempt?: number) =>
    request<ArtifactInfo[]>(runPath(run, "/artifacts") + runQuery(run, { attempt })),
  artifactUrl: (run: RunKey, name: string, attempt?: number) =>
    BASE + runPath(run, `/artifacts/${name.split("/").map(seg).join("/")}`) + runQuery(run, { attempt }),
  compareRuns: (refs: string[]) => request<CompareTable>(`/compare${query({ runs: refs.join(",") })}`),
  compare: (project: string, experiment: string, runs: string[]) =>
    request<CompareTable>(
      `/projects/${seg(project)}/experiments/${seg(experiment)}/compare${query({ runs: runs.join(",") })}`,
    ),
};

export const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
export const STATUSES = ["pending", "queued", "running", "succeeded", "failed", "cancelled"];

/** A value at a dotted path of a nested object (params.model.depth). */
export function pick(source: Record<string, Json>, dotted: string): Json | undefined {
  let current: Json | undefined = source;
  for (const part of dotted.split(".")) {
    if (current === null || typeof current !== "object" || Array.isArray(current)) return undefined;
    current = (current as Record<string, Json>)[part];
  }
  return current;
}

/** Leaves of a nested object under dotted keys: {model: {depth: 3}} -> {"model.depth": 3}. */
export function flatten(source: Record<string, Json>, prefix = ""): Record<string, Json> {
  const out: Record<string, Json> = {};
  for (const [key, value] of Object.entries(source)) {
    const name = prefix + key;
    if (value !== null && typeof value === "object" && !Array.isArray(value) && Object.keys(value).length > 0) {
      Object.assign(out, flatten(value, `${name}.`));
    } else {
      out[name] = value;
    }
  }
  return out;
}

export function formatValue(value: Json | undefined): string {
  if (value === undefined) return "";
  if (value === null) return "null";
  if (typeof value === "number") {
    if (Number.isInteger(value)) return String(value);
    const abs = Math.abs(value);
    return abs !== 0 && (abs < 1e-3 || abs >= 1e6) ? value.toExponential(3) : String(+value.toPrecision(6));
  }
  if (typeof value === "string") return value;
  return JSON.stringify(value);
}

export function formatTime(iso: string | null): string {
  if (!iso) return "";
  const date = new Date(iso);
  return date.toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" });
}

export function formatDuration(seconds: number | null): string {
  if (seconds === null) return "";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 120) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 120) return `${minutes} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

export function durationBetween(start: string | null, end: string | null): number | null {
  if (!start || !end) return null;
  return (new Date(end).getTime() - new Date(start).getTime()) / 1000;
}
