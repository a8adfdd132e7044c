// Run page: status, attempts and task timeline, results, configuration, artifacts, live logs and the
// environment of each attempt; any attempt can be picked to see its results, artifacts, logs, environment
// and what changed from the one before.
import { lazy, Suspense, useEffect, useState } from "react";
import {
  api,
  formatDuration,
  formatTime,
  formatValue,
  runKeyOf,
  TERMINAL,
  type AttemptDetail,
  type AttemptInfo,
  type Json,
  type RunDetail,
  type RunKey,
  type TaskState,
} from "../api";
import { ArtifactList } from "../components/ArtifactList";
import { ErrorNote, KeyValues, Loading, Section, StatusBadge } from "../components/common";
import { LogViewer } from "../components/LogViewer";
import { links } from "../router";
import { useAsync } from "../useAsync";

const Timeline = lazy(() => import("../components/Timeline"));
const MetricCharts = lazy(() => import("../components/MetricCharts"));

const REFRESH_MS = 2000;

function changesText(attempt: AttemptInfo): string {
  const parts = [];
  if (attempt.results_changed) parts.push(`${attempt.results_changed} result${attempt.results_changed > 1 ? "s" : ""}`);
  if (attempt.artifacts_changed)
    parts.push(`${attempt.artifacts_changed} artifact${attempt.artifacts_changed > 1 ? "s" : ""}`);
  return parts.length ? `${parts.join(", ")} changed` : "";
}

function Attempts({
  run,
  shown,
  onSelect,
}: {
  run: RunDetail;
  shown: number | undefined;
  onSelect: (attempt: number) => void;
}) {
  if (run.attempts.length === 0) return <div className="muted">no attempts yet</div>;
  return (
    <table className="grid" data-testid="attempts">
      <thead>
        <tr>
          <th>#</th>
          <th>Status</th>
          <th>Started</th>
          <th>Duration</th>
          <th>Host</th>
          <th>Profile</th>
          <th>Changes</th>
          <th>Error</th>
        </tr>
      </thead>
      <tbody>
        {run.attempts.map((attempt) => (
          <tr
            key={attempt.execution_id}
            className={attempt.attempt === shown ? "selected" : undefined}
            data-testid={`attempt-row-${attempt.attempt}`}
          >
            <td title={attempt.execution_id}>
              <button
                type="button"
                className="link"
                onClick={() => onSelect(attempt.attempt)}
                data-testid={`attempt-select-${attempt.attempt}`}
              >
                {attempt.attempt}
              </button>
            </td>
            <td>
              <StatusBadge status={attempt.status} />
            </td>
            <td>{formatTime(attempt.started_at)}</td>
            <td className="num">{formatDuration(attempt.duration_seconds)}</td>
            <td>{attempt.host ? `${attempt.host}:${attempt.pid ?? ""}` : ""}</td>
            <td>{attempt.profile_name ?? ""}</td>
            <td className="small">{changesText(attempt)}</td>
            <td>
              {attempt.error && (
                <span className="error-text">
                  {attempt.error.type}: {attempt.error.message}
                  {attempt.error.task_name ? ` (task ${attempt.error.task_name})` : ""}
                </span>
              )}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function shortHash(hash: string | null, size: number | null): string {
  return hash ? `${hash.slice(0, 12)} (${size ?? "?"} B)` : "";
}

/** Results and changes of one attempt: what it left, what it set itself, what changed before it. */
function AttemptView({ detail }: { detail: AttemptDetail }) {
  const own = detail.own_results;
  const keys = Object.keys(detail.results).sort();
  const { changes } = detail;
  const rows = [
    ...changes.results.map((c) => ({
      kind: "result",
      name: c.key,
      change: c.change,
      before: c.change === "added" ? "" : formatValue(c.before),
      after: c.change === "removed" ? "" : formatValue(c.after),
    })),
    ...changes.artifacts.map((c) => ({
      kind: "artifact",
      name: c.name,
      change: c.change,
      before: shortHash(c.before_hash, c.before_size),
      after: shortHash(c.after_hash, c.after_size),
    })),
  ];
  return (
    <div className="columns">
      <div data-testid="attempt-results">
        <h3>Results as it left them</h3>
        {keys.length === 0 ? (
          <div className="muted">none</div>
        ) : (
          <table className="kv">
            <tbody>
              {keys.map((key) => (
                <tr key={key}>
                  <th>{key}</th>
                  <td>
                    <code>{formatValue(detail.results[key])}</code>{" "}
                    {own !== null && !(key in own) && (
                      <span className="muted small" title="set by an earlier attempt, kept in the view">
                        (earlier attempt)
                      </span>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </div>
      <div data-testid="attempt-changes">
        <h3>{changes.before === null ? "First attempt" : `Changes from attempt ${changes.before}`}</h3>
        {changes.before === null && <div className="muted">nothing before it to compare with</div>}
        {changes.before !== null && rows.length === 0 && <div className="muted">no changes</div>}
        {changes.before !== null && rows.length > 0 && (
          <table className="grid">
            <thead>
              <tr>
                <th>Kind</th>
                <th>Name</th>
                <th>Change</th>
                <th>Before</th>
                <th>After</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((row) => (
                <tr key={`${row.kind}/${row.name}`} data-testid={`change-${row.kind}-${row.name}`}>
                  <td>{row.kind}</td>
                  <td>{row.name}</td>
                  <td>
                    <span className={`badge change-${row.change}`}>{row.change}</span>
                  </td>
                  <td>
                    <code>{row.before}</code>
                  </td>
                  <td>
                    <code>{row.after}</code>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </div>
    </div>
  );
}

/** Where and with what an attempt ran: interpreter, platform, CPUs, GPUs, Slurm ids, the
 * allow-listed variables and the versions of the distributions its tasks reached. */
function AttemptEnvironment({ attempt }: { attempt: AttemptInfo }) {
  const env = attempt.environment;
  if (!env && !attempt.python && Object.keys(attempt.distributions).length === 0)
    return <div className="muted">no environment recorded (an attempt before capture existed)</div>;
  const machine: Record<string, Json> = {
    python: attempt.python_version ? `${env?.implementation ?? "Python"} ${attempt.python_version}` : null,
    interpreter: attempt.python,
    host: attempt.host,
    platform: env?.platform ?? null,
    cpus: env?.cpu_count ?? null,
    gpus: env && env.gpus.length > 0 ? env.gpus.join("; ") : "none",
  };
  for (const [key, value] of Object.entries(env?.slurm ?? {})) machine[`slurm.${key}`] = value;
  for (const key of Object.keys(machine)) if (machine[key] === null) delete machine[key];
  return (
    <div className="env-grid" data-testid="attempt-environment">
      <div>
        <h3>Machine</h3>
        <KeyValues values={machine} testId="env-machine" />
      </div>
      <div>
        <h3>Variables</h3>
        <KeyValues values={env?.variables ?? {}} testId="env-variables" />
      </div>
      <div>
        <h3>Distributions</h3>
        <KeyValues values={attempt.distributions} testId="env-distributions" />
      </div>
    </div>
  );
}

/** How the cache answered a cache=True task ("hit", or "miss: " and what changed). */
function cacheNote(task: TaskState): string | null {
  const note = task.extra["cache"];
  return typeof note === "string" ? note : null;
}

function Tasks({ run }: { run: RunDetail }) {
  if (run.tasks.length === 0) return null;
  const cached = run.tasks.some((task) => cacheNote(task) !== null);
  return (
    <table className="grid" data-testid="tasks">
      <thead>
        <tr>
          <th>Task</th>
          <th>Status</th>
          <th>Duration</th>
          {cached && <th>Cache</th>}
          <th>Error</th>
        </tr>
      </thead>
      <tbody>
        {run.tasks.map((task) => (
          <tr key={task.name}>
            <td>{task.name}</td>
            <td>{task.status && <StatusBadge status={task.status} />}</td>
            <td className="num">{formatDuration(task.duration_seconds)}</td>
            {cached && <td data-testid="task-cache">{cacheNote(task) ?? ""}</td>}
            <td className="error-text">{task.error ?? ""}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function RunPage({ run: key }: { run: RunKey }) {
  const [tick, setTick] = useState(0);
  // The attempt picked in the attempts table (undefined: follow the latest one).
  const [picked, setPicked] = useState<number | undefined>();
  const identity = `${key.id}/${key.project ?? ""}/${key.experiment ?? ""}`;
  const run = useAsync(() => api.run(key), [identity, tick]);
  // Fetched alongside the run (not after the charts' chunk loads): a long series is drawn sooner.
  const metrics = useAsync(() => api.metrics(key), [identity, tick]);
  const logs = useAsync(() => api.logs(key, picked), [identity, tick, picked]);
  const artifacts = useAsync(() => api.artifacts(key, picked), [identity, tick, picked]);
  // The latest attempt that started (a queued one has nothing to show yet).
  const attempts = run.data?.attempts ?? [];
  const latest = (attempts.filter((item) => item.started_at !== null).at(-1) ?? attempts.at(-1))?.attempt;
  const shown = picked ?? latest;
  const attempt = useAsync(
    () => (shown === undefined ? Promise.resolve(undefined) : api.attempt(key, shown)),
    [identity, tick, shown],
  );
  const [cancelError, setCancelError] = useState<string | undefined>();

  const terminal = run.data ? TERMINAL.has(run.data.status) : false;
  useEffect(() => {
    if (!run.data || terminal) return;
    const timer = window.setTimeout(() => setTick((value) => value + 1), REFRESH_MS);
    return () => window.clearTimeout(timer);
  }, [run.data, terminal]);

  if (run.error) return <ErrorNote message={run.error} />;
  if (!run.data) return <Loading />;
  const detail = run.data;
  // Once loaded, address the run by all three ids so file requests can never be ambiguous.
  const pinned = runKeyOf(detail);

  const cancel = () => {
    setCancelError(undefined);
    api.cancel(key).then(
      () => setTick((value) => value + 1),
      (reason: unknown) => setCancelError(reason instanceof Error ? reason.message : String(reason)),
    );
  };

  return (
    <div data-testid="run-page">
      <section className="card">
        <div className="crumbs">
          <a href={links.overview()}>workspace</a> / {detail.project_id} /{" "}
          <a href={links.experiment(detail.project_id, detail.experiment_id)} data-testid="run-experiment-link">
            {detail.experiment_id}
          </a>
        </div>
        <h1>
          run {detail.id} <StatusBadge status={detail.status} stale={detail.stale_reason} />
        </h1>
        {detail.stale_reason && (
          <div className="error-note" data-testid="run-stale">
            <b>stale</b>: recorded as {detail.status}, but {detail.stale_reason}.{" "}
            <code>molexp reap</code> marks it failed; <code>molexp run --rerun-failed</code> runs it again.
          </div>
        )}
        <div className="stats small">
          <span>created {formatTime(detail.created_at)}</span>
          {detail.started_at && <span>started {formatTime(detail.started_at)}</span>}
          {detail.finished_at && <span>finished {formatTime(detail.finished_at)}</span>}
          {detail.workflow_id && <span>workflow {detail.workflow_id}</span>}
          {detail.replica_index !== null && <span>replica {detail.replica_index}</span>}
          {detail.seed !== null && <span>seed {detail.seed}</span>}
          {detail.cancellable && (
            <button type="button" className="danger" onClick={cancel} data-testid="cancel-run">
              Cancel run
            </button>
          )}
        </div>
        {cancelError && <ErrorNote message={cancelError} />}
        {detail.error && (
          <div className="error-note" data-testid="run-error">
            <b>{detail.error.type}</b>: {detail.error.message}
            {detail.error.task_name ? ` (task ${detail.error.task_name})` : ""}
          </div>
        )}
      </section>
      <div className="columns">
        <Section title="Parameters" testId="run-params">
          <KeyValues values={detail.params} />
        </Section>
        <Section title="Results" testId="run-results">
          <KeyValues values={detail.results} />
        </Section>
        <Section title="Configuration" testId="run-config">
          <div className="small">
            profile <b data-testid="run-profile-label">{detail.profile?.label || detail.profile?.name || "none"}</b>
            {detail.config_hash && (
              <>
                {" "}
                · hash <code title={detail.config_hash}>{detail.config_hash.slice(0, 12)}</code>
              </>
            )}
          </div>
          <KeyValues values={detail.config} />
        </Section>
      </div>
      <Suspense fallback={null}>
        <MetricCharts run={pinned} tick={tick} metrics={metrics} />
      </Suspense>
      <Section title="Timeline" testId="run-timeline">
        <Suspense fallback={<Loading />}>
          <Timeline run={detail} />
        </Suspense>
        <Attempts run={detail} shown={shown} onSelect={(number) => setPicked(number === latest ? undefined : number)} />
        <Tasks run={detail} />
      </Section>
      {shown !== undefined && (
        <Section
          title={
            <>
              Attempt {shown} of {detail.attempts.length}
              {shown === latest ? " (latest)" : ""}
              {picked !== undefined && (
                <>
                  {" "}
                  <button type="button" className="link small" onClick={() => setPicked(undefined)} data-testid="attempt-latest">
                    show the latest
                  </button>
                </>
              )}
            </>
          }
          testId="attempt-detail"
        >
          {attempt.error && <ErrorNote message={attempt.error} />}
          {attempt.data && <AttemptView detail={attempt.data} />}
          {attempt.data && (
            <>
              <h3>Environment</h3>
              <AttemptEnvironment attempt={attempt.data.attempt} />
            </>
          )}
        </Section>
      )}
      <Section title={picked === undefined ? "Artifacts" : `Artifacts as attempt ${picked} left them`}>
        {artifacts.error && <ErrorNote message={artifacts.error} />}
        {artifacts.data && <ArtifactList run={pinned} artifacts={artifacts.data} attempt={picked} />}
      </Section>
      <Section title={`Logs of attempt ${shown ?? ""}`}>
        {logs.error && <ErrorNote message={logs.error} />}
        {logs.data && (
          <LogViewer
            key={picked ?? "latest"}
            run={pinned}
            logs={logs.data}
            terminal={terminal || picked !== undefined}
            attempt={picked}
          />
        )}
      </Section>
    </div>
  );
}
