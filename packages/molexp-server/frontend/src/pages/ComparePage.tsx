// Compare view: parameters and results of two or more runs side by side, differences highlighted.
import type { ChartData, ChartOptions } from "chart.js";
import { useState } from "react";
import { Bar } from "react-chartjs-2";
import { api, runKeyOf, formatValue, type CompareTable } from "../api";
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
  const options: ChartOptions<"bar"> = {
    responsive: true,
    maintainAspectRatio: false,
    animation: false,
    plugins: { legend: { display: false } },
  };
  return (
    <div className="chart-box" style={{ height: 260 }} data-testid="compare-chart">
      <Bar data={data} options={options} />
    </div>
  );
}

export default function ComparePage({
  project,
  experiment,
  runs,
}: {
  project: string;
  experiment: string;
  runs: string[];
}) {
  const table = useAsync(() => api.compare(project, experiment, runs), [project, experiment, runs.join(",")]);
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
          <a href={links.overview()}>workspace</a> / {project} /{" "}
          <a href={links.experiment(project, experiment)}>{experiment}</a>
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
                <th key={run.id}>
                  <a href={links.run(runKeyOf(run))}>{run.id}</a>{" "}
                  <StatusBadge status={run.status} stale={run.stale_reason} />
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
                      {row.section} <b>{row.key}</b>
                    </>
                  )}
                </th>
                {row.values.map((value, index) => (
                  <td key={data.runs[index].id} className="num">
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
    </div>
  );
}
