// Compare view: two or more runs side by side — parameters, profile and config, results, workflow
// and git state, each task's code (with the diff of changed sources), environment and
// distributions (the facts `molexp diff` shows), differences highlighted; a bar chart of a result
// and each metric series of the runs overlaid in one chart.
import type { ChartData, ChartOptions } from "chart.js";
import { useState } from "react";
import { Bar, Scatter } from "react-chartjs-2";
import { api, runKeyOf, formatValue, type CodeDiff, type CompareTable, type MetricSeries, type RunSummary } from "../api";
import { SERIES_COLORS } from "../components/charts";
import { ErrorNote, Loading, StatusBadge } from "../components/common";
import { links } from "../router";
import { useAsync } from "../useAsync";

function ResultBars({ table, resultKey }: { table: CompareTable; resultKey: string }) {
  const row = table.rows.find((item) => item.section === "result" && item.key === resultKey);
  if (!row) return null;
  const data: ChartData<"bar", (number | null)[], string> = {
    labels: table.runs.map((run) => run.id),
    datasets: [
      {
        label: resultKey,
        data: row.values.map((value) => (typeof value === "number" ? value : null)),
        backgroundColor: table.runs.map((_, index) => SERIES_COLORS[index % SERIES_COLORS.length]),
      },
    ],
  };
  const numbers = row.values.filter((value): value is number => typeof value === "number");
  // No forced zero: the axis spans the values (with a margin), so close results stay apart.
  const low = Math.min(...numbers);
  const high = Math.max(...numbers);
  const pad = high > low ? (high - low) * 0.15 : Math.abs(high) * 0.05 || 1;
  const yMin = low - pad;
  const yMax = high + pad;
  const options: ChartOptions<"bar"> = {
    responsive: true,
    maintainAspectRatio: false,
    animation: false,
    plugins: { legend: { display: false } },
    scales: { y: { beginAtZero: false, min: yMin, max: yMax } },
  };
  return (
    <div className="chart-box" style={{ height: 260 }} data-testid="compare-chart" data-y-min={yMin} data-y-max={yMax}>
      <Bar data={data} options={options} />
    </div>
  );
}

const METRIC_POINTS = 1000;

/** The latest attempt's points of each run's series ``name``, overlaid in one chart. */
function MetricOverlay({ runs, name }: { runs: RunSummary[]; name: string }) {
  const series = useAsync(
    () =>
      Promise.all(
        runs.map((run) => api.metric(runKeyOf(run), name, METRIC_POINTS).catch((): MetricSeries | null => null)),
      ),
    [name, runs.map((run) => `${run.project_id}/${run.experiment_id}/${run.id}`).join(",")],
  );
  if (series.error) return <ErrorNote message={series.error} />;
  if (!series.data) return <Loading />;
  const datasets = series.data.flatMap((one, index) => {
    if (one === null || one.steps.length === 0) return [];
    const latest = Math.max(...one.attempts);
    const points = one.steps
      .map((step, i) => ({ x: step, y: one.values[i], attempt: one.attempts[i] }))
      .filter((point) => point.attempt === latest)
      .map(({ x, y }) => ({ x, y }));
    const color = SERIES_COLORS[index % SERIES_COLORS.length];
    return [
      {
        label: runs[index].id,
        data: points,
        showLine: true,
        pointRadius: 0,
        borderWidth: 1.5,
        borderColor: color,
        backgroundColor: color,
      },
    ];
  });
  const data: ChartData<"scatter", { x: number; y: number }[]> = { datasets };
  const options: ChartOptions<"scatter"> = {
    responsive: true,
    maintainAspectRatio: false,
    animation: false,
    parsing: false,
    plugins: { legend: { display: true } },
    scales: { x: { title: { display: true, text: "step" } }, y: { title: { display: true, text: name } } },
  };
  return (
    <figure className="metric" data-testid={`compare-metric-${name}`} data-runs={datasets.length}>
      <figcaption className="small">
        <b>{name}</b> · {datasets.length} of {runs.length} runs (latest attempt of each)
      </figcaption>
      <div className="chart-box" style={{ height: 240 }}>
        <Scatter data={data} options={options} />
      </div>
    </figure>
  );
}

function DiffText({ diff }: { diff: CodeDiff }) {
  return (
    <pre className="preview diff" data-testid={`code-diff-${diff.task}-${diff.run}`}>
      {diff.diff.split("\n").map((line, index) => {
        const kind = line.startsWith("+") && !line.startsWith("+++") ? "add" : line.startsWith("-") && !line.startsWith("---") ? "del" : line.startsWith("@@") ? "hunk" : "";
        return (
          <span key={index} className={kind ? `diff-${kind}` : undefined}>
            {line}
            {"\n"}
          </span>
        );
      })}
    </pre>
  );
}

const SECTION_LABELS: Record<string, string> = {
  param: "param",
  config: "config",
  result: "result",
  workflow: "workflow_id",
  git: "git",
  code: "code",
  python: "python",
  environment: "env",
  distributions: "dist",
};

/** Runs of one experiment (``project`` and ``experiment`` given, ``runs`` their ids), or of any
 * experiments (``runs`` as project/experiment/run_id). */
export default function ComparePage({
  project,
  experiment,
  runs,
}: {
  project?: string;
  experiment?: string;
  runs: string[];
}) {
  const table = useAsync(
    () => (project && experiment ? api.compare(project, experiment, runs) : api.compareRuns(runs)),
    [project ?? "", experiment ?? "", runs.join(",")],
  );
  const [onlyDiffering, setOnlyDiffering] = useState(false);
  const [chartKey, setChartKey] = useState<string | undefined>();

  if (runs.length < 2) return <ErrorNote message="Select at least two runs to compare." />;
  if (table.error) return <ErrorNote message={table.error} />;
  if (!table.data) return <Loading />;
  const data = table.data;
  const numericResults = data.rows
    .filter((row) => row.section === "result" && row.values.some((value) => typeof value === "number"))
    .map((row) => row.key);
  const selectedKey = chartKey ?? numericResults[0];
  const rows = onlyDiffering ? data.rows.filter((row) => row.differs) : data.rows;

  return (
    <div data-testid="compare-page">
      <section className="card">
        <div className="crumbs">
          <a href={links.overview()}>workspace</a>
          {project && experiment ? (
            <>
              {" "}
              / <a href={links.project(project)}>{project}</a> /{" "}
              <a href={links.experiment(project, experiment)}>{experiment}</a>
            </>
          ) : (
            " / compare across experiments"
          )}
        </div>
        <h1>Compare {data.runs.length} runs</h1>
        <label className="small">
          <input
            type="checkbox"
            checked={onlyDiffering}
            onChange={(event) => setOnlyDiffering(event.target.checked)}
            data-testid="only-differing"
          />{" "}
          only rows that differ
        </label>
      </section>
      <section className="card scroll">
        <table className="grid compare" data-testid="compare-table">
          <thead>
            <tr>
              <th />
              {data.runs.map((run) => (
                <th key={`${run.project_id}/${run.experiment_id}/${run.id}`}>
                  <a href={links.run(runKeyOf(run))}>{run.id}</a>{" "}
                  <StatusBadge status={run.status} stale={run.stale_reason} />
                  {!experiment && (
                    <div className="muted small" data-testid="compare-run-experiment">
                      {run.project_id}/{run.experiment_id}
                    </div>
                  )}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {rows.map((row) => (
              <tr
                key={`${row.section}.${row.key}`}
                className={row.differs ? "differs" : undefined}
                data-testid={`compare-row-${row.section}-${row.key}`}
              >
                <th className={row.section}>
                  {row.section === "profile" ? (
                    <b>profile</b>
                  ) : (
                    <>
                      {SECTION_LABELS[row.section] === row.key ? "" : `${SECTION_LABELS[row.section] ?? row.section} `}
                      <b>{row.key}</b>
                    </>
                  )}
                </th>
                {row.values.map((value, index) => (
                  <td key={index} className="num">
                    {formatValue(value)}
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </section>
      {selectedKey && (
        <section className="card">
          <h2>
            Result{" "}
            <select value={selectedKey} onChange={(event) => setChartKey(event.target.value)}>
              {numericResults.map((key) => (
                <option key={key}>{key}</option>
              ))}
            </select>
          </h2>
          <ResultBars table={data} resultKey={selectedKey} />
        </section>
      )}
      {data.metrics.length > 0 && (
        <section className="card" data-testid="compare-metrics">
          <h2>Metrics</h2>
          <div className="metric-grid">
            {data.metrics.map((name) => (
              <MetricOverlay key={name} runs={data.runs} name={name} />
            ))}
          </div>
        </section>
      )}
      {data.code_diffs.length > 0 && (
        <section className="card" data-testid="compare-code-diffs">
          <h2>Code that changed</h2>
          {data.code_diffs.map((diff) => (
            <div key={`${diff.task}/${diff.run}`}>
              <h3 className="small">
                task <b>{diff.task}</b>: {diff.base} → {diff.run}
              </h3>
              <DiffText diff={diff} />
            </div>
          ))}
        </section>
      )}
    </div>
  );
}
