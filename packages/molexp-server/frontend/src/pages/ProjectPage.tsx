// Project page: every run of a project across its experiments in one table (params, profile and
// config, results, the last value of each metric); any result or metric plotted against any
// parameter, coloured by profile, experiment or another parameter; parallel coordinates over
// three or more parameters and a result or metric.
import type { ChartData, ChartOptions } from "chart.js";
import { useState } from "react";
import { Scatter } from "react-chartjs-2";
import { api, formatValue, pick, runKeyOf, type Json, type ProjectTable, type RunSummary } from "../api";
import { SERIES_COLORS } from "../components/charts";
import { ErrorNote, Loading, StatusBadge } from "../components/common";
import { links } from "../router";
import { useAsync } from "../useAsync";

const TABLE_ROWS = 500;

/** A run's value of a column key: `params.lr`, `config.steps`, `results.loss`, `metrics.energy`,
 * `profile` (the label) or `experiment`. */
function valueOf(run: RunSummary, key: string): Json | undefined {
  if (key === "profile") return run.profile_label ?? null;
  if (key === "experiment") return run.experiment_id;
  const dot = key.indexOf(".");
  const section = key.slice(0, dot);
  const rest = key.slice(dot + 1);
  if (section === "params") return pick(run.params, rest);
  if (section === "config") return pick(run.config, rest);
  if (section === "results") return pick(run.results, rest);
  if (section === "metrics") return run.metrics[rest];
  return undefined;
}

function numeric(runs: RunSummary[], keys: string[]): string[] {
  return keys.filter((key) => runs.some((run) => typeof valueOf(run, key) === "number"));
}

function varies(runs: RunSummary[], key: string): boolean {
  return new Set(runs.map((run) => JSON.stringify(valueOf(run, key) ?? null))).size > 1;
}

function colorGroups(runs: RunSummary[], key: string): Map<string, number> {
  const labels = [...new Set(runs.map((run) => formatValue(valueOf(run, key) ?? null)))].sort();
  return new Map(labels.map((label, index) => [label, index]));
}

function colorOf(index: number): string {
  return SERIES_COLORS[index % SERIES_COLORS.length];
}

interface Point {
  x: number;
  y: number;
  run: RunSummary;
}

function SweepChart({
  runs,
  x,
  y,
  color,
  logX,
}: {
  runs: RunSummary[];
  x: string;
  y: string;
  color: string;
  logX: boolean;
}) {
  const groups = new Map<string, Point[]>();
  for (const run of runs) {
    const xv = valueOf(run, x);
    const yv = valueOf(run, y);
    if (typeof xv !== "number" || typeof yv !== "number") continue;
    const label = color ? formatValue(valueOf(run, color) ?? null) : y;
    const points = groups.get(label) ?? [];
    points.push({ x: xv, y: yv, run });
    groups.set(label, points);
  }
  const order = color ? colorGroups(runs, color) : new Map([[y, 0]]);
  const plotted = [...groups.values()].reduce((sum, points) => sum + points.length, 0);
  const data: ChartData<"scatter", Point[], string> = {
    datasets: [...groups.entries()]
      .sort(([a], [b]) => (order.get(a) ?? 0) - (order.get(b) ?? 0))
      .map(([label, points]) => ({
        label: color ? `${color}=${label}` : label,
        data: points.sort((a, b) => a.x - b.x),
        borderWidth: 1,
        backgroundColor: colorOf(order.get(label) ?? 0),
        borderColor: colorOf(order.get(label) ?? 0),
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
      window.location.hash = links.run(runKeyOf(point.run));
    },
    plugins: {
      legend: { display: Boolean(color) },
      tooltip: {
        callbacks: {
          label: (item) => {
            const point = item.raw as Point;
            return `${point.run.experiment_id}/${point.run.id}: ${x}=${formatValue(point.x)}, ${y}=${formatValue(point.y)}`;
          },
        },
      },
    },
    scales: {
      x: { type: logX ? "logarithmic" : "linear", title: { display: true, text: x } },
      y: { title: { display: true, text: y } },
    },
  };
  return (
    <>
      <div className="muted small" data-testid="project-plot-count">
        {plotted} of {runs.length} runs plotted in {groups.size} {groups.size === 1 ? "group" : "groups"}
      </div>
      <div className="chart-box" style={{ height: 380 }} data-testid="project-chart" data-groups={groups.size}>
        <Scatter data={data} options={options} />
      </div>
    </>
  );
}

const PC_WIDTH = 1100;
const PC_HEIGHT = 320;
const PC_MARGIN = { top: 28, bottom: 24, left: 60, right: 60 };

/** Parallel coordinates: one vertical axis per dimension, one line per run across them. */
function ParallelCoordinates({ runs: all, dims, color }: { runs: RunSummary[]; dims: string[]; color: string }) {
  // Only runs with a number on every axis are drawn; the axes span theirs.
  const runs = all.filter((run) => dims.every((dim) => typeof valueOf(run, dim) === "number"));
  const ranges = dims.map((dim) => {
    const values = runs.map((run) => valueOf(run, dim) as number);
    const low = Math.min(...values);
    const high = Math.max(...values);
    return { low, high: high > low ? high : low + 1 };
  });
  const span = PC_WIDTH - PC_MARGIN.left - PC_MARGIN.right;
  const xOf = (index: number) => PC_MARGIN.left + (dims.length > 1 ? (span * index) / (dims.length - 1) : 0);
  const yOf = (index: number, value: number) => {
    const { low, high } = ranges[index];
    const height = PC_HEIGHT - PC_MARGIN.top - PC_MARGIN.bottom;
    return PC_MARGIN.top + height * (1 - (value - low) / (high - low));
  };
  const order = color ? colorGroups(runs, color) : new Map<string, number>();
  const lines = runs.flatMap((run) => {
    const values = dims.map((dim) => valueOf(run, dim));
    if (!values.every((value) => typeof value === "number")) return [];
    const points = (values as number[]).map((value, index) => `${xOf(index).toFixed(1)},${yOf(index, value).toFixed(1)}`);
    const group = color ? formatValue(valueOf(run, color) ?? null) : "";
    return [{ run, points: points.join(" "), group, stroke: colorOf(order.get(group) ?? 0) }];
  });
  return (
    <div className="pc-box" data-testid="parallel-coords" data-lines={lines.length}>
      <svg viewBox={`0 0 ${PC_WIDTH} ${PC_HEIGHT}`} width="100%" role="img" aria-label="parallel coordinates">
        {lines.map((line) => (
          <polyline
            key={`${line.run.experiment_id}/${line.run.id}`}
            className="pc-line"
            points={line.points}
            fill="none"
            stroke={line.stroke}
            strokeOpacity={0.7}
            strokeWidth={1.5}
            onClick={() => {
              window.location.hash = links.run(runKeyOf(line.run));
            }}
          >
            <title>
              {line.run.experiment_id}/{line.run.id}
              {line.group ? ` (${color}=${line.group})` : ""}
            </title>
          </polyline>
        ))}
        {dims.map((dim, index) => (
          <g key={dim} className="pc-axis" data-testid={`pc-axis-${dim}`}>
            <line x1={xOf(index)} x2={xOf(index)} y1={PC_MARGIN.top} y2={PC_HEIGHT - PC_MARGIN.bottom} stroke="#374151" />
            <text x={xOf(index)} y={PC_MARGIN.top - 10} textAnchor="middle" fontSize="12" fontWeight="600">
              {dim}
            </text>
            <text x={xOf(index) + 4} y={PC_MARGIN.top + 4} fontSize="10" fill="#6b7280">
              {formatValue(ranges[index].high)}
            </text>
            <text x={xOf(index) + 4} y={PC_HEIGHT - PC_MARGIN.bottom} fontSize="10" fill="#6b7280">
              {formatValue(ranges[index].low)}
            </text>
          </g>
        ))}
      </svg>
      {color && (
        <div className="small pc-legend">
          {[...order.entries()].map(([label, index]) => (
            <span key={label}>
              <span className="swatch" style={{ background: colorOf(index) }} /> {color}={label}
            </span>
          ))}
        </div>
      )}
    </div>
  );
}

function refOf(run: RunSummary): string {
  return `${run.project_id}/${run.experiment_id}/${run.id}`;
}

function RunsTable({ table, columns }: { table: ProjectTable; columns: string[] }) {
  const shown = table.runs.slice(0, TABLE_ROWS);
  const [selected, setSelected] = useState<string[]>([]);
  const toggle = (ref: string) =>
    setSelected((now) => (now.includes(ref) ? now.filter((item) => item !== ref) : [...now, ref]));
  return (
    <div className="scroll">
      <div className="toolbar">
        <button
          type="button"
          disabled={selected.length < 2}
          onClick={() => {
            window.location.hash = links.compareRuns(selected);
          }}
          data-testid="project-compare"
        >
          Compare {selected.length} selected
        </button>
        <span className="muted small">runs of any experiments</span>
      </div>
      <table className="grid" data-testid="project-table">
        <thead>
          <tr>
            <th />
            <th>experiment</th>
            <th>run</th>
            <th>status</th>
            <th>profile</th>
            {columns.map((key) => (
              <th key={key} data-testid={`project-col-${key}`}>
                {key}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {shown.map((run) => (
            <tr key={`${run.experiment_id}/${run.id}`} data-testid="project-row">
              <td>
                <input
                  type="checkbox"
                  checked={selected.includes(refOf(run))}
                  onChange={() => toggle(refOf(run))}
                  aria-label={`select ${run.id}`}
                  data-testid={`project-select-${run.id}`}
                />
              </td>
              <td>
                <a href={links.experiment(run.project_id, run.experiment_id)}>{run.experiment_id}</a>
              </td>
              <td>
                <a href={links.run(runKeyOf(run))}>{run.id}</a>
              </td>
              <td>
                <StatusBadge status={run.status} stale={run.stale_reason} />
              </td>
              <td>{run.profile_label ?? ""}</td>
              {columns.map((key) => (
                <td key={key} className="num">
                  {formatValue(valueOf(run, key))}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
      {table.runs.length > shown.length && (
        <div className="muted small">
          the first {shown.length} of {table.runs.length} runs are listed; the plots show all of them
        </div>
      )}
    </div>
  );
}

export default function ProjectPage({ project }: { project: string }) {
  const table = useAsync(() => api.projectRuns(project), [project]);
  const [x, setX] = useState<string | undefined>();
  const [y, setY] = useState<string | undefined>();
  const [color, setColor] = useState<string | undefined>();
  const [logX, setLogX] = useState(false);
  const [dims, setDims] = useState<string[] | undefined>();

  if (table.error) return <ErrorNote message={table.error} />;
  if (!table.data) return <Loading />;
  const data = table.data;
  const runs = data.runs;
  const params = data.param_keys.map((key) => `params.${key}`);
  const config = data.config_keys.map((key) => `config.${key}`);
  const results = data.result_keys.map((key) => `results.${key}`);
  const metrics = data.metric_keys.map((key) => `metrics.${key}`);
  const numericParams = numeric(runs, [...params, ...config]);
  const xKeys = [...numericParams.filter((key) => varies(runs, key)), ...numericParams.filter((key) => !varies(runs, key))];
  const yKeys = numeric(runs, [...results, ...metrics]);
  const colorKeys = ["profile", "experiment", ...[...params, ...config].filter((key) => varies(runs, key))];
  const xKey = x ?? xKeys[0];
  const yKey = y ?? yKeys[0];
  const colorKey = color ?? (data.profiles.length > 1 ? "profile" : "");
  const pcCandidates = [...xKeys.filter((key) => varies(runs, key)), ...yKeys];
  const pcDims = dims ?? [...xKeys.filter((key) => varies(runs, key)), ...(yKey ? [yKey] : [])];
  const toggleDim = (key: string) =>
    setDims(pcDims.includes(key) ? pcDims.filter((dim) => dim !== key) : pcCandidates.filter((dim) => dim === key || pcDims.includes(dim)));

  return (
    <div data-testid="project-page">
      <section className="card">
        <div className="crumbs">
          <a href={links.overview()}>workspace</a> / {project}
        </div>
        <h1>Project {data.project_id}</h1>
        <div className="stats small">
          <span data-testid="project-total">
            {data.total} {data.total === 1 ? "run" : "runs"} in {data.experiments.length}{" "}
            {data.experiments.length === 1 ? "experiment" : "experiments"}
          </span>
          {data.truncated && <span className="muted">(the first {runs.length} are shown)</span>}
          <span>
            experiments:{" "}
            {data.experiments.map((experiment, index) => (
              <span key={experiment}>
                {index > 0 ? ", " : ""}
                <a href={links.experiment(project, experiment)}>{experiment}</a>
              </span>
            ))}
          </span>
        </div>
      </section>
      <section className="card">
        <h2>Sweep across experiments</h2>
        {xKey && yKey ? (
          <>
            <div className="toolbar">
              <label>
                y{" "}
                <select value={yKey} onChange={(event) => setY(event.target.value)} data-testid="project-y">
                  {yKeys.map((key) => (
                    <option key={key}>{key}</option>
                  ))}
                </select>
              </label>
              <label>
                x{" "}
                <select value={xKey} onChange={(event) => setX(event.target.value)} data-testid="project-x">
                  {xKeys.map((key) => (
                    <option key={key}>{key}</option>
                  ))}
                </select>
              </label>
              <label>
                colour by{" "}
                <select value={colorKey} onChange={(event) => setColor(event.target.value)} data-testid="project-color">
                  <option value="">(none)</option>
                  {colorKeys
                    .filter((key) => key !== xKey)
                    .map((key) => (
                      <option key={key}>{key}</option>
                    ))}
                </select>
              </label>
              <label>
                <input type="checkbox" checked={logX} onChange={(event) => setLogX(event.target.checked)} /> log x
              </label>
            </div>
            <SweepChart runs={runs} x={xKey} y={yKey} color={colorKey} logX={logX} />
          </>
        ) : (
          <div className="muted">No run of this project has a numeric parameter and a numeric result or metric.</div>
        )}
      </section>
      <section className="card">
        <h2>Parallel coordinates</h2>
        <div className="toolbar small" data-testid="pc-dims">
          {pcCandidates.map((key) => (
            <label key={key}>
              <input type="checkbox" checked={pcDims.includes(key)} onChange={() => toggleDim(key)} data-testid={`pc-dim-${key}`} /> {key}
            </label>
          ))}
        </div>
        {pcDims.length >= 3 ? (
          <ParallelCoordinates runs={runs} dims={pcDims} color={colorKey} />
        ) : (
          <div className="muted" data-testid="pc-too-few">
            Pick three or more numeric dimensions (parameters that vary, results, metrics).
          </div>
        )}
      </section>
      <section className="card">
        <h2>Runs</h2>
        <RunsTable table={data} columns={[...params, ...config, ...results, ...metrics]} />
      </section>
    </div>
  );
}
