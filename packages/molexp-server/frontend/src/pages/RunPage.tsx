// Run page: status, attempts and task timeline, results, configuration, artifacts and live logs.
import { lazy, Suspense, useEffect, useState } from "react";
import { api, formatDuration, formatTime, runKeyOf, TERMINAL, type RunDetail, type RunKey } from "../api";
import { ArtifactList } from "../components/ArtifactList";
import { ErrorNote, KeyValues, Loading, Section, StatusBadge } from "../components/common";
import { LogViewer } from "../components/LogViewer";
import { links } from "../router";
import { useAsync } from "../useAsync";

const Timeline = lazy(() => import("../components/Timeline"));

const REFRESH_MS = 2000;

function Attempts({ run }: { run: RunDetail }) {
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
          <th>Error</th>
        </tr>
      </thead>
      <tbody>
        {run.attempts.map((attempt) => (
          <tr key={attempt.execution_id}>
            <td title={attempt.execution_id}>{attempt.attempt}</td>
            <td>
              <StatusBadge status={attempt.status} />
            </td>
            <td>{formatTime(attempt.started_at)}</td>
            <td className="num">{formatDuration(attempt.duration_seconds)}</td>
            <td>{attempt.host ? `${attempt.host}:${attempt.pid ?? ""}` : ""}</td>
            <td>{attempt.profile_name ?? ""}</td>
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

function Tasks({ run }: { run: RunDetail }) {
  if (run.tasks.length === 0) return null;
  return (
    <table className="grid" data-testid="tasks">
      <thead>
        <tr>
          <th>Task</th>
          <th>Status</th>
          <th>Duration</th>
          <th>Error</th>
        </tr>
      </thead>
      <tbody>
        {run.tasks.map((task) => (
          <tr key={task.name}>
            <td>{task.name}</td>
            <td>{task.status && <StatusBadge status={task.status} />}</td>
            <td className="num">{formatDuration(task.duration_seconds)}</td>
            <td className="error-text">{task.error ?? ""}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function RunPage({ run: key }: { run: RunKey }) {
  const [tick, setTick] = useState(0);
  const identity = `${key.id}/${key.project ?? ""}/${key.experiment ?? ""}`;
  const run = useAsync(() => api.run(key), [identity, tick]);
  const logs = useAsync(() => api.logs(key), [identity, tick]);
  const artifacts = useAsync(() => api.artifacts(key), [identity, tick]);
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
      <Section title="Timeline" testId="run-timeline">
        <Suspense fallback={<Loading />}>
          <Timeline run={detail} />
        </Suspense>
        <Attempts run={detail} />
        <Tasks run={detail} />
      </Section>
      <Section title="Artifacts">
        {artifacts.error && <ErrorNote message={artifacts.error} />}
        {artifacts.data && <ArtifactList run={pinned} artifacts={artifacts.data} />}
      </Section>
      <Section title="Logs">
        {logs.error && <ErrorNote message={logs.error} />}
        {logs.data && <LogViewer run={pinned} logs={logs.data} terminal={terminal} />}
      </Section>
    </div>
  );
}
