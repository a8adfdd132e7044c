// Workspace overview: identity, status counts, broken records, projects with experiments, recent runs.
import { api, runKeyOf, formatTime, type ExperimentInfo, type ProjectInfo } from "../api";
import { BrokenCheckNote, ErrorNote, Loading, Section, StatusBadge, StatusCounts } from "../components/common";
import { links } from "../router";
import { useAsync } from "../useAsync";

function ProjectCard({ project }: { project: ProjectInfo }) {
  const experiments = useAsync<ExperimentInfo[]>(() => api.experiments(project.id), [project.id]);
  return (
    <section className="card" data-testid={`project-${project.id}`}>
      <h2>
        <a href={links.project(project.id)} data-testid={`project-link-${project.id}`}>
          {project.name}
        </a>{" "}
        <span className="muted small">{project.id}</span>{" "}
        <a className="small" href={links.project(project.id)}>
          all runs, sweep plot and parallel coordinates →
        </a>
      </h2>
      {project.description && <p>{project.description}</p>}
      {experiments.error && <ErrorNote message={experiments.error} />}
      {experiments.data && experiments.data.length === 0 && <div className="muted">no experiments</div>}
      {experiments.data && experiments.data.length > 0 && (
        <table className="grid">
          <thead>
            <tr>
              <th>Experiment</th>
              <th>Runs</th>
              <th>Status</th>
              <th>Created</th>
            </tr>
          </thead>
          <tbody>
            {experiments.data.map((experiment) => (
              <tr key={experiment.id}>
                <td>
                  <a
                    href={links.experiment(project.id, experiment.id)}
                    data-testid={`experiment-link-${experiment.id}`}
                  >
                    {experiment.name}
                  </a>
                </td>
                <td>{experiment.run_count}</td>
                <td>
                  <StatusCounts counts={experiment.by_status} />
                  {experiment.stale_count > 0 && (
                    <>
                      {" "}
                      <span
                        className="badge status-stale"
                        title="running runs whose owner process is gone (molexp reap marks them failed)"
                        data-testid={`stale-count-${experiment.id}`}
                      >
                        stale {experiment.stale_count}
                      </span>
                    </>
                  )}
                </td>
                <td>{formatTime(experiment.created_at)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

export function OverviewPage() {
  const workspace = useAsync(() => api.workspace(), []);
  const projects = useAsync(() => api.projects(), []);
  const recent = useAsync(() => api.runs({ order_by: "-created_at", limit: 15 }), []);

  if (workspace.error) return <ErrorNote message={workspace.error} />;
  if (!workspace.data) return <Loading />;
  const info = workspace.data;
  return (
    <div data-testid="overview-page">
      <section className="card">
        <h1 data-testid="workspace-name">{info.name}</h1>
        <div className="muted small">
          {info.id} · {info.root}
        </div>
        <div className="stats">
          <span>
            <b>{info.counts.projects}</b> projects
          </span>
          <span>
            <b>{info.counts.experiments}</b> experiments
          </span>
          <span>
            <b>{info.counts.runs}</b> runs
          </span>
          <StatusCounts counts={info.counts.by_status} />
        </div>
      </section>
      {info.broken_pending && <BrokenCheckNote />}
      {info.broken.length > 0 && (
        <Section title={`Broken records (${info.broken.length})`} testId="broken-records">
          <ul className="broken">
            {info.broken.map((record) => (
              <li key={record.path}>
                <code>{record.path}</code>: {record.error}
              </li>
            ))}
          </ul>
        </Section>
      )}
      {projects.error && <ErrorNote message={projects.error} />}
      {projects.data?.map((project) => <ProjectCard key={project.id} project={project} />)}
      <Section title="Recent runs" testId="recent-runs">
        {recent.error && <ErrorNote message={recent.error} />}
        {recent.data && (
          <table className="grid">
            <thead>
              <tr>
                <th>Run</th>
                <th>Experiment</th>
                <th>Status</th>
                <th>Created</th>
              </tr>
            </thead>
            <tbody>
              {recent.data.items.map((run) => (
                <tr key={run.id}>
                  <td>
                    <a href={links.run(runKeyOf(run))}>{run.id}</a>
                  </td>
                  <td>
                    <a href={links.experiment(run.project_id, run.experiment_id)}>
                      {run.project_id}/{run.experiment_id}
                    </a>
                  </td>
                  <td>
                    <StatusBadge status={run.status} stale={run.stale_reason} />
                  </td>
                  <td>{formatTime(run.created_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Section>
    </div>
  );
}
