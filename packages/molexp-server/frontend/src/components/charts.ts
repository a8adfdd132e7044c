// Chart.js registration shared by the chart components (only the pieces the UI uses, for a small bundle).
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  LineElement,
  LogarithmicScale,
  PointElement,
  ScatterController,
  Tooltip,
} from "chart.js";

Chart.register(
  BarController,
  BarElement,
  CategoryScale,
  LinearScale,
  LogarithmicScale,
  PointElement,
  LineElement,
  ScatterController,
  Tooltip,
  Legend,
);

export const STATUS_COLORS: Record<string, string> = {
  pending: "#9aa5b1",
  queued: "#7c8cf8",
  running: "#2f80ed",
  succeeded: "#27ae60",
  cached: "#6fcf97",
  skipped: "#bdbdbd",
  failed: "#eb5757",
  cancelled: "#f2994a",
};

export const SERIES_COLORS = ["#2f80ed", "#eb5757", "#27ae60", "#f2994a", "#9b51e0", "#56ccf2", "#219653", "#bb6bd9"];

export function statusColor(status: string | null): string {
  return STATUS_COLORS[status ?? ""] ?? "#828282";
}
