// Status timeline of a run: one floating bar per execution attempt and per task of the latest attempt.
import type { ChartData, ChartOptions } from "chart.js";
import { Bar } from "react-chartjs-2";
import type { RunDetail } from "../api";
import { statusColor } from "./charts";

interface Span {
  label: string;
  status: string | null;
  start: number;
  end: number;
}

function spansOf(run: RunDetail, now: number): { spans: Span[]; origin: number } {
  const raw: { label: string; status: string | null; start: string | null; end: string | null }[] = [
    ...run.attempts.map((attempt) => ({
      label: `attempt ${attempt.attempt}`,
      status: attempt.status,
      start: attempt.started_at,
      end: attempt.finished_at,
    })),
    ...run.tasks.map((task) => ({
      label: `task ${task.name}`,
      status: task.status,
      start: task.started_at,
      end: task.finished_at,
    })),
  ];
  const starts = raw.filter((item) => item.start).map((item) => new Date(item.start as string).getTime());
  const origin = starts.length > 0 ? Math.min(...starts) : now;
  const spans = raw
    .filter((item) => item.start)
    .map((item) => ({
      label: item.label,
      status: item.status,
      start: (new Date(item.start as string).getTime() - origin) / 1000,
      end: ((item.end ? new Date(item.end).getTime() : now) - origin) / 1000,
    }));
  return { spans, origin };
}

export default function Timeline({ run }: { run: RunDetail }) {
  const { spans } = spansOf(run, Date.now());
  if (spans.length === 0) return <div className="muted">not started yet</div>;
  const data: ChartData<"bar", [number, number][], string> = {
    labels: spans.map((span) => span.label),
    datasets: [
      {
        label: "seconds since the first start",
        data: spans.map((span) => [span.start, Math.max(span.end, span.start + 0.001)]),
        backgroundColor: spans.map((span) => statusColor(span.status)),
        borderSkipped: false,
        barPercentage: 0.7,
      },
    ],
  };
  const options: ChartOptions<"bar"> = {
    indexAxis: "y",
    responsive: true,
    maintainAspectRatio: false,
    animation: false,
    plugins: {
      legend: { display: false },
      tooltip: {
        callbacks: {
          label: (item) => {
            const span = spans[item.dataIndex];
            return `${span.status ?? "unknown"}: ${span.start.toFixed(2)} s → ${span.end.toFixed(2)} s`;
          },
        },
      },
    },
    scales: { x: { title: { display: true, text: "seconds since first start" }, beginAtZero: true } },
  };
  return (
    <div className="chart-box" style={{ height: 40 + spans.length * 28 }} data-testid="timeline-chart">
      <Bar data={data} options={options} />
    </div>
  );
}
