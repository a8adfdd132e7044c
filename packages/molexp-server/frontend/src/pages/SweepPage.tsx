// Sweep plot: any numeric result against any parameter across an experiment's runs, grouped by a parameter.
import type { ChartData, ChartOptions } from "chart.js";
import { Scatter } from "react-chartjs-2";
import { api, formatValue, pick, type Json, type RunSummary } from "../api";
import { SERIES_COLORS } from "../components/charts";
import { ErrorNote, Loading } from "../components/common";
import { href, links, replaceHash } from "../router";
import { useAsync } from "../useAsync";

const MAX_RUNS = 10_000;

function numericKeys(runs: RunSummary[], keys: string[], section: "params" | "results"): string[] {
  return keys.filter((key) => runs.some((run) => typeof pick(run[section], key) === "number"));
}

/** Keys whose values differ between runs first: a constant parameter makes a poor x axis. */
function varyingFirst(runs: RunSummary[], keys: string[], section: "params" | "results"): string[] {
  const varies = (key: string) => new Set(runs.map((run) => JSON.stringify(pick(run[section], key)))).size > 1;
  return [...keys.filter(varies), ...keys.filter((key) => !varies(key))];
}

interface Point {
  x: number;
  y: number;
  runId: string;
}

export default function SweepPage({
  project,
  experiment,
  query,
}: {
  project: string;
  experiment: string;
  query: URLSearchParams;
}) {
  const info = useAsync(() => api.experiment(project, experiment), [project, experiment]);
  const runs = useAsync(
    () => api.experimentRuns(project, experiment, { limit: MAX_RUNS, order_by: "created_at" }),
    [project, experiment],
  );
  if (info.error || runs.error) return <ErrorNote message={(info.error ?? runs.error) as string} />;
  if (!info.data || !runs.data) return <Loading />;

  const items = runs.data.items;
  const xKeys = varyingFirst(items, numericKeys(items, info.data.param_keys, "params"), "params");
  const yKeys = numericKeys(items, info.data.result_keys, "results");
  const x = query.get("x") ?? xKeys[0];
  const y = query.get("y") ?? yKeys[0];
  const group = query.get("group") ?? "";
  const logX = query.get("logx") === "1";
  const logY = query.get("logy") === "1";
  const set = (changes: Record<string, string | undefined>) =>
    replaceHash(
      href(["p", project, "e", experiment, "sweep"], {
        x,
        y,
        group: group || undefined,
        logx: logX ? "1" : undefined,
        logy: logY ? "1" : undefined,
        ...changes,
      }),
    );

  const header = (
    <section className="card">
      <div className="crumbs">
        <a href={links.overview()}>workspace</a> / {project} /{" "}
        <a href={links.experiment(project, experiment)}>{experiment}</a>
      </div>
      <h1>Sweep plot</h1>
      {x && y && (
        <div className="toolbar">
          <label>
            y (result){" "}
            <select value={y} onChange={(event) => set({ y: event.target.value })} data-testid="sweep-y">
              {yKeys.map((key) => (
                <option key={key}>{key}</option>
              ))}
            </select>
          </label>
          <label>
            x (parameter){" "}
            <select value={x} onChange={(event) => set({ x: event.target.value })} data-testid="sweep-x">
              {xKeys.map((key) => (
                <option key={key}>{key}</option>
              ))}
            </select>
          </label>
          <label>
            group by{" "}
            <select
              value={group}
              onChange={(event) => set({ group: event.target.value || undefined })}
              data-testid="sweep-group"
            >
              <option value="">(none)</option>
              {info.data.param_keys
                .filter((key) => key !== x)
                .map((key) => (
                  <option key={key}>{key}</option>
                ))}
            </select>
          </label>
          <label>
            <input type="checkbox" checked={logX} onChange={(event) => set({ logx: event.target.checked ? "1" : undefined })} /> log x
          </label>
          <label>
            <input type="checkbox" checked={logY} onChange={(event) => set({ logy: event.target.checked ? "1" : undefined })} /> log y
          </label>
        </div>
      )}
    </section>
  );

  if (!x || !y) {
    return (
      <div data-testid="sweep-page">
        {header}
        <div className="card muted">
          This experiment has no runs with a numeric parameter and a numeric result to plot.
        </div>
      </div>
    );
  }

  const groups = new Map<string, Point[]>();
  for (const run of items) {
    const xv = pick(run.params, x);
    const yv = pick(run.results, y);
    if (typeof xv !== "number" || typeof yv !== "number") continue;
    const label = group ? `${group}=${formatValue(pick(run.params, group) as Json | undefined)}` : y;
    const points = groups.get(label) ?? [];
    points.push({ x: xv, y: yv, runId: run.id });
    groups.set(label, points);
  }
  const plotted = [...groups.values()].reduce((sum, points) => sum + points.length, 0);
  const data: ChartData<"scatter", Point[], string> = {
    datasets: [...groups.entries()].map(([label, points], index) => ({
      label,
      data: points.sort((a, b) => a.x - b.x),
      backgroundColor: SERIES_COLORS[index % SERIES_COLORS.length],
      borderColor: SERIES_COLORS[index % SERIES_COLORS.length],
      pointRadius: 4,
    })),
  };
  const options: ChartOptions<"scatter"> = {
    responsive: true,
    maintainAspectRatio: false,
    animation: false,
    onClick: (_event, elements, chart) => {
      const element = elements[0];
      if (!element) return;
      const point = chart.data.datasets[element.datasetIndex].data[element.index] as unknown as Point;
      window.location.hash = links.run({ id: point.runId, project, experiment });
    },
    plugins: {
      legend: { display: groups.size > 1 || Boolean(group) },
      tooltip: {
        callbacks: {
          label: (item) => {
            const point = item.raw as Point;
            return `${point.runId}: ${x}=${formatValue(point.x)}, ${y}=${formatValue(point.y)}`;
          },
        },
      },
    },
    scales: {
      x: { type: logX ? "logarithmic" : "linear", title: { display: true, text: `params.${x}` } },
      y: { type: logY ? "logarithmic" : "linear", title: { display: true, text: `results.${y}` } },
    },
  };

  return (
    <div data-testid="sweep-page">
      {header}
      <section className="card">
        <div className="muted small" data-testid="sweep-count">
          {plotted} of {runs.data.total} runs plotted
        </div>
        <div className="chart-box" style={{ height: 420 }} data-testid="sweep-chart">
          <Scatter data={data} options={options} />
        </div>
      </section>
    </div>
  );
}
