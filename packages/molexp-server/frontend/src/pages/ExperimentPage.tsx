// Experiment page: a server-sorted, filterable, paged runs table with params and results as columns.
import { useEffect, useMemo, useState, type FormEvent, type ReactNode } from "react";
import { api, runKeyOf, durationBetween, formatDuration, formatTime, formatValue, pick, type RunSummary } from "../api";
import { BrokenCheckNote, ErrorNote, Loading, StatusBadge, StatusChips } from "../components/common";
import { href, links, replaceHash } from "../router";
import { useAsync } from "../useAsync";

const PAGE_SIZE = 100;

interface Column {
  field: string;
  label: string;
  sortable: boolean;
  render: (run: RunSummary) => ReactNode;
  numeric?: boolean;
  kind?: "param" | "config" | "result";
}

export function ExperimentPage({
  project,
  experiment,
  query,
}: {
  project: string;
  experiment: string;
  query: URLSearchParams;
}) {
  const where = query.get("where") ?? "";
  const statusParam = query.get("status") ?? "";
  const sort = query.get("sort") ?? "-created_at";
  const page = Math.max(0, Number(query.get("page") ?? "0") || 0);
  const statuses = useMemo(() => new Set(statusParam.split(",").filter(Boolean)), [statusParam]);

  const [draft, setDraft] = useState(where);
  useEffect(() => setDraft(where), [where]);
  const [selected, setSelected] = useState<Set<string>>(new Set());

  const info = useAsync(() => api.experiment(project, experiment), [project, experiment]);
  const runs = useAsync(
    () =>
      api.experimentRuns(project, experiment, {
        where,
        status: statusParam,
        order_by: sort,
        limit: PAGE_SIZE,
        offset: page * PAGE_SIZE,
      }),
    [project, experiment, where, statusParam, sort, page],
  );

  const navigate = (changes: Record<string, string | undefined>) => {
    const next: Record<string, string | undefined> = {
      where,
      status: statusParam,
      sort,
      page: page ? String(page) : undefined,
      ...changes,
    };
    replaceHash(href(["p", project, "e", experiment], next));
  };

  const columns = useMemo<Column[]>(() => {
    const base: Column[] = [
      {
        field: "id",
        label: "run",
        sortable: true,
        render: (run) => (
          <a href={links.run(runKeyOf(run))} data-testid="run-link">
            {run.id}
          </a>
        ),
      },
      {
        field: "status",
        label: "status",
        sortable: true,
        render: (run) => <StatusBadge status={run.status} stale={run.stale_reason} />,
      },
      { field: "created_at", label: "created", sortable: true, render: (run) => formatTime(run.created_at) },
      {
        field: "duration",
        label: "duration",
        sortable: false,
        numeric: true,
        render: (run) => formatDuration(durationBetween(run.started_at, run.finished_at)),
      },
    ];
    const profile: Column = {
      field: "profile",
      label: "profile",
      sortable: true,
      render: (run) => <span data-testid="run-profile">{run.profile_label ?? ""}</span>,
    };
    const params = (info.data?.param_keys ?? []).map<Column>((key) => ({
      field: `params.${key}`,
      label: key,
      sortable: true,
      numeric: true,
      kind: "param",
      render: (run) => formatValue(pick(run.params, key)),
    }));
    const config = (info.data?.config_keys ?? []).map<Column>((key) => ({
      field: `config.${key}`,
      label: key,
      sortable: true,
      numeric: true,
      kind: "config",
      render: (run) => formatValue(pick(run.config, key)),
    }));
    const results = (info.data?.result_keys ?? []).map<Column>((key) => ({
      field: `results.${key}`,
      label: key,
      sortable: true,
      numeric: true,
      kind: "result",
      render: (run) => formatValue(pick(run.results, key)),
    }));
    return [...base, profile, ...params, ...config, ...results];
  }, [info.data]);

  // One header cell over each run of columns of the same kind: params, config, results.
  const groups = useMemo(() => {
    const spans: { kind?: Column["kind"]; span: number }[] = [{ span: 1 }];
    for (const column of columns) {
      const last = spans[spans.length - 1];
      if (last.kind === column.kind) last.span += 1;
      else spans.push({ kind: column.kind, span: 1 });
    }
    return spans;
  }, [columns]);

  const onSort = (field: string) => {
    const next = sort === field ? `-${field}` : field;
    navigate({ sort: next, page: undefined });
  };

  const onFilter = (event: FormEvent) => {
    event.preventDefault();
    navigate({ where: draft.trim() || undefined, page: undefined });
  };

  const toggleStatus = (status: string) => {
    const next = new Set(statuses);
    if (next.has(status)) next.delete(status);
    else next.add(status);
    navigate({ status: [...next].join(",") || undefined, page: undefined });
  };

  const toggleRun = (runId: string) => {
    setSelected((current) => {
      const next = new Set(current);
      if (next.has(runId)) next.delete(runId);
      else next.add(runId);
      return next;
    });
  };

  if (info.error) return <ErrorNote message={info.error} />;
  const experimentInfo = info.data;
  const total = runs.data?.total ?? 0;
  const lastPage = Math.max(0, Math.ceil(total / PAGE_SIZE) - 1);

  return (
    <div data-testid="experiment-page">
      <section className="card">
        <div className="crumbs">
          <a href={links.overview()}>workspace</a> /{" "}
          <a href={links.project(project)} data-testid="project-crumb">
            {project}
          </a>
        </div>
        <h1>{experimentInfo?.name ?? experiment}</h1>
        {experimentInfo?.description && <p>{experimentInfo.description}</p>}
        <div className="toolbar">
          <a
            className="button"
            data-testid="compare-button"
            aria-disabled={selected.size < 2}
            href={selected.size >= 2 ? links.compare(project, experiment, [...selected]) : undefined}
          >
            Compare selected ({selected.size})
          </a>
          <a className="button" href={links.sweep(project, experiment)} data-testid="sweep-link">
            Sweep plot
          </a>
          {experimentInfo?.workflow_source && (
            <span className="muted small">
              workflow {experimentInfo.workflow_source}
              {experimentInfo.git_commit ? ` @ ${experimentInfo.git_commit.slice(0, 10)}` : ""}
            </span>
          )}
        </div>
        <form className="filter" onSubmit={onFilter}>
          <input
            type="search"
            value={draft}
            onChange={(event) => setDraft(event.target.value)}
            placeholder='filter, e.g. lr < 1e-3 and results.loss < 0.5 or status == "failed"'
            aria-label="Filter runs"
            data-testid="filter-input"
            spellCheck={false}
          />
          <button type="submit" data-testid="filter-apply">
            Apply
          </button>
        </form>
        <StatusChips selected={statuses} counts={experimentInfo?.by_status ?? {}} onToggle={toggleStatus} />
        {(experimentInfo?.stale_count ?? 0) > 0 && (
          <div className="small stale-note" data-testid="stale-note">
            <span className="badge status-stale">stale {experimentInfo?.stale_count}</span> running run(s) whose
            owner process is gone; <code>molexp reap</code> marks them failed.
          </div>
        )}
      </section>
      {runs.error && <ErrorNote message={runs.error} />}
      {runs.data?.broken_pending && <BrokenCheckNote />}
      {runs.data && runs.data.broken.length > 0 && (
        <section className="card" data-testid="broken-runs">
          <h2>Unreadable run records</h2>
          <ul className="broken">
            {runs.data.broken.map((record) => (
              <li key={record.path}>
                <span className="badge status-failed">broken</span> <code>{record.path}</code>: {record.error}
              </li>
            ))}
          </ul>
        </section>
      )}
      <section className="card table-card">
        <div className="table-meta">
          <span data-testid="run-total">
            {runs.loading && !runs.data ? "…" : `${total} runs`}
          </span>
          <span className="pager">
            <button type="button" disabled={page <= 0} onClick={() => navigate({ page: String(page - 1) })}>
              ‹ prev
            </button>
            <span>
              page {page + 1} / {lastPage + 1}
            </span>
            <button
              type="button"
              disabled={page >= lastPage}
              onClick={() => navigate({ page: String(page + 1) })}
            >
              next ›
            </button>
          </span>
        </div>
        {!runs.data && !runs.error && <Loading />}
        {runs.data && (
          <div className="scroll">
            <table className="grid runs" data-testid="runs-table">
              <thead>
                <tr className="groups" data-testid="column-groups">
                  {groups.map((group, index) => (
                    <th key={index} colSpan={group.span} className={group.kind ?? ""}>
                      {group.kind === "param" ? "params" : group.kind === "result" ? "results" : group.kind ?? ""}
                    </th>
                  ))}
                </tr>
                <tr>
                  <th />
                  {columns.map((column) => (
                    <th
                      key={column.field}
                      className={`${column.sortable ? "sortable" : ""} ${column.kind ?? ""}`}
                      title={column.kind ? column.field : undefined}
                      onClick={column.sortable ? () => onSort(column.field) : undefined}
                      data-testid={`col-${column.field}`}
                    >
                      {column.label}
                      {sort === column.field ? " ▲" : sort === `-${column.field}` ? " ▼" : ""}
                    </th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {runs.data.items.map((run) => (
                  <tr key={run.id} data-testid="run-row">
                    <td>
                      <input
                        type="checkbox"
                        checked={selected.has(run.id)}
                        onChange={() => toggleRun(run.id)}
                        aria-label={`select ${run.id}`}
                        data-testid={`select-${run.id}`}
                      />
                    </td>
                    {columns.map((column) => (
                      <td key={column.field} className={column.numeric ? "num" : undefined}>
                        {column.render(run)}
                      </td>
                    ))}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
    </div>
  );
}
