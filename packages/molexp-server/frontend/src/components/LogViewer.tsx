// Log panel of a run (or of one attempt): pick a log, read it, follow it live over Server-Sent Events.
import { useEffect, useRef, useState } from "react";
import { api, type LogInfo, type RunKey } from "../api";
import { ErrorNote } from "./common";

const MAX_SHOWN_CHARS = 400_000;

function LogText({
  run,
  name,
  follow,
  attempt,
}: {
  run: RunKey;
  name: string;
  follow: boolean;
  attempt?: number;
}) {
  const [text, setText] = useState("");
  const [offset, setOffset] = useState<number | null>(null);
  const [error, setError] = useState<string | undefined>();
  const [live, setLive] = useState(false);
  const pre = useRef<HTMLPreElement>(null);
  const identity = `${run.id}/${run.project ?? ""}/${run.experiment ?? ""}/${attempt ?? ""}`;

  const append = (chunk: string) =>
    setText((current) => {
      const next = current + chunk;
      return next.length > MAX_SHOWN_CHARS ? next.slice(next.length - MAX_SHOWN_CHARS) : next;
    });

  useEffect(() => {
    let cancelled = false;
    setText("");
    setOffset(null);
    setError(undefined);
    api.log(run, name, 0, attempt).then(
      (chunk) => {
        if (cancelled) return;
        append(chunk.text);
        setOffset(chunk.next_offset);
      },
      (reason: unknown) => !cancelled && setError(String(reason instanceof Error ? reason.message : reason)),
    );
    return () => {
      cancelled = true;
    };
  }, [identity, name]);

  const ready = offset !== null;
  useEffect(() => {
    if (!follow || !ready || offset === null) return;
    let source: EventSource | null = null;
    let since = offset;
    let stopped = false;
    const open = () => {
      source = new EventSource(api.logStreamUrl(run, name, since, attempt), { withCredentials: true });
      setLive(true);
      source.addEventListener("log", (event) => {
        const data = JSON.parse((event as MessageEvent<string>).data) as { text: string; next_offset: number };
        since = data.next_offset;
        append(data.text);
      });
      source.addEventListener("end", (event) => {
        const data = JSON.parse((event as MessageEvent<string>).data) as { reason: string };
        source?.close();
        setLive(false);
        // The server bounds each stream; keep following a run that is still going.
        if (!stopped && data.reason === "max_duration") open();
      });
      source.onerror = () => {
        source?.close();
        setLive(false);
      };
    };
    open();
    return () => {
      stopped = true;
      source?.close();
      setLive(false);
    };
    // Re-subscribe only when the log or the follow switch changes, not on every received chunk.
  }, [identity, name, follow, ready]);

  useEffect(() => {
    const element = pre.current;
    if (element && follow) element.scrollTop = element.scrollHeight;
  }, [text, follow]);

  return (
    <>
      {error && <ErrorNote message={error} />}
      <div className="muted small" data-testid="log-live">
        {live ? "● live" : "not following"}
      </div>
      <pre className="log" ref={pre} data-testid="log-text">
        {text}
      </pre>
    </>
  );
}

export function LogViewer({
  run,
  logs,
  terminal,
  attempt,
}: {
  run: RunKey;
  logs: LogInfo[];
  terminal: boolean;
  /** Show this attempt's logs (default: the latest attempt's). */
  attempt?: number;
}) {
  const [name, setName] = useState<string | undefined>(logs[0]?.name);
  const [follow, setFollow] = useState(!terminal);
  useEffect(() => {
    if (logs.length > 0 && (name === undefined || !logs.some((log) => log.name === name))) setName(logs[0].name);
  }, [logs, name]);
  if (logs.length === 0 || name === undefined) return <div className="muted">no logs</div>;
  return (
    <div data-testid="log-viewer">
      <div className="toolbar">
        {logs.map((log) => (
          <button
            key={log.name}
            type="button"
            className={`tab${log.name === name ? " active" : ""}`}
            onClick={() => setName(log.name)}
            data-testid={`log-tab-${log.name}`}
          >
            {log.name}
          </button>
        ))}
        <label className="follow">
          <input
            type="checkbox"
            checked={follow}
            onChange={(event) => setFollow(event.target.checked)}
            data-testid="log-follow"
          />
          follow
        </label>
      </div>
      <LogText key={`${attempt ?? "latest"}/${name}`} run={run} name={name} follow={follow} attempt={attempt} />
    </div>
  );
}
