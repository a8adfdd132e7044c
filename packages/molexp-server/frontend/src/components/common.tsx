// Small shared pieces: status badges, status chips, error and loading notes, key/value tables.
import type { ReactNode } from "react";
import { flatten, formatValue, STATUSES, type Json } from "../api";

export function StatusBadge({ status, stale }: { status: string; stale?: string | null }) {
  return (
    <>
      <span className={`badge status-${status}`} data-testid="status-badge">
        {status}
      </span>
      {stale && (
        <>
          {" "}
          <span className="badge status-stale" title={`stale: ${stale}`} data-testid="stale-badge">
            stale
          </span>
        </>
      )}
    </>
  );
}

export function StatusCounts({ counts }: { counts: Record<string, number> }) {
  const entries = STATUSES.filter((status) => (counts[status] ?? 0) > 0);
  if (entries.length === 0) return <span className="muted">no runs</span>;
  return (
    <span className="counts">
      {entries.map((status) => (
        <span key={status} className={`badge status-${status}`} data-testid={`count-${status}`}>
          {status} {counts[status]}
        </span>
      ))}
    </span>
  );
}

export function StatusChips({
  selected,
  counts,
  onToggle,
}: {
  selected: Set<string>;
  counts: Record<string, number>;
  onToggle: (status: string) => void;
}) {
  return (
    <div className="chips" role="group" aria-label="Filter by status">
      {STATUSES.map((status) => (
        <button
          key={status}
          type="button"
          className={`chip status-${status}${selected.has(status) ? " active" : ""}`}
          aria-pressed={selected.has(status)}
          data-testid={`status-chip-${status}`}
          onClick={() => onToggle(status)}
        >
          {status} <span className="chip-count">{counts[status] ?? 0}</span>
        </button>
      ))}
    </div>
  );
}

export function ErrorNote({ message }: { message: string }) {
  return (
    <div className="error-note" role="alert" data-testid="error">
      {message}
    </div>
  );
}

/** Shown while the server's first check of every record runs: broken records appear after it. */
export function BrokenCheckNote() {
  return (
    <div className="small muted broken-check" role="status" data-testid="broken-pending">
      Checking every record for damage (the server&apos;s first check since it started); unreadable records
      will be listed here when it ends.
    </div>
  );
}

export function Loading() {
  return <div className="muted">Loading…</div>;
}

export function Section({ title, children, testId }: { title: ReactNode; children: ReactNode; testId?: string }) {
  return (
    <section className="card" data-testid={testId}>
      <h2>{title}</h2>
      {children}
    </section>
  );
}

export function KeyValues({ values: nested, testId }: { values: Record<string, Json>; testId?: string }) {
  const values = flatten(nested);
  const keys = Object.keys(values).sort();
  if (keys.length === 0) return <div className="muted">none</div>;
  return (
    <table className="kv" data-testid={testId}>
      <tbody>
        {keys.map((key) => (
          <tr key={key}>
            <th>{key}</th>
            <td>
              <code>{formatValue(values[key])}</code>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
