// The run page's line charts of its metric series: one chart per metric, one line per attempt,
// the points downsampled by the server (LTTB) to about the chart's width.
import type { ChartData, ChartOptions } from "chart.js";
import { Scatter } from "react-chartjs-2";
import { api, formatValue, type MetricInfo, type MetricSeries, type RunKey } from "../api";
import { useAsync } from "../useAsync";
import { SERIES_COLORS } from "./charts";
import { ErrorNote, Loading, Section } from "./common";

const POINTS = 1500;

function MetricChart({ run, metric, tick }: { run: RunKey; metric: MetricInfo; tick: number }) {
  const series = useAsync(() => api.metric(run, metric.name, POINTS), [run.id, metric.name, tick]);
  if (series.error) return <ErrorNote message={series.error} />;
  if (!series.data) return <Loading />;
  return <SeriesChart series={series.data} metric={metric} />;
}

function SeriesChart({ series, metric }: { series: MetricSeries; metric: MetricInfo }) {
  const byAttempt = new Map<number, { x: number; y: number }[]>();
  series.steps.forEach((step, index) => {
    const attempt = series.attempts[index];
    const points = byAttempt.get(attempt) ?? [];
    points.push({ x: step, y: series.values[index] });
    byAttempt.set(attempt, points);
  });
  const data: ChartData<"scatter", { x: number; y: number }[]> = {
    datasets: [...byAttempt.entries()].map(([attempt, points], index) => ({
      label: `attempt ${attempt}`,
      data: points,
      showLine: true,
      pointRadius: 0,
      borderWidth: 1.5,
      borderColor: SERIES_COLORS[index % SERIES_COLORS.length],
      backgroundColor: SERIES_COLORS[index % SERIES_COLORS.length],
    })),
  };
  const options: ChartOptions<"scatter"> = {
    responsive: true,
    maintainAspectRatio: false,
    animation: false,
    parsing: false,
    plugins: { legend: { display: byAttempt.size > 1 } },
    scales: { x: { title: { display: true, text: "step" } }, y: { title: { display: true, text: metric.name } } },
  };
  return (
    <figure className="metric" data-testid={`metric-${metric.name}`}>
      <figcaption className="small">
        <b>{metric.name}</b> {byAttempt.size > 1 ? "latest attempt: " : ""}last {formatValue(metric.last)} · min {formatValue(metric.min)} · max{" "}
        {formatValue(metric.max)} · {series.total.toLocaleString()} points
        {series.downsampled ? ` (${series.steps.length.toLocaleString()} drawn)` : ""}
      </figcaption>
      <div className="chart-box" style={{ height: 220 }}>
        <Scatter data={data} options={options} />
      </div>
    </figure>
  );
}

/** The run page's "Metrics" section; nothing at all for a run that logged no metrics. The run
 * page fetches the summaries (``metrics``) while this chunk loads. */
export default function MetricCharts({
  run,
  tick,
  metrics,
}: {
  run: RunKey;
  tick: number;
  metrics: { data?: MetricInfo[]; error?: string };
}) {
  if (metrics.error)
    return (
      <Section title="Metrics" testId="run-metrics">
        <ErrorNote message={metrics.error} />
      </Section>
    );
  if (!metrics.data || metrics.data.length === 0) return null;
  return (
    <Section title="Metrics" testId="run-metrics">
      <div className="metric-grid">
        {metrics.data.map((metric) => (
          <MetricChart key={metric.name} run={run} metric={metric} tick={tick} />
        ))}
      </div>
    </Section>
  );
}
