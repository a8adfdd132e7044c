// Artifacts of a run (or of one attempt) with inline previews: JSON pretty-printed, text, and images.
import { useEffect, useState } from "react";
import { api, formatTime, type ArtifactInfo, type RunKey } from "../api";
import { ErrorNote } from "./common";

const PREVIEW_BYTES = 256 * 1024;

function kindOf(artifact: ArtifactInfo): "json" | "text" | "image" | "binary" {
  const type = artifact.media_type.split(";")[0].trim().toLowerCase();
  if (type === "application/json" || type.endsWith("+json")) return "json";
  if (type.startsWith("image/")) return "image";
  if (type.startsWith("text/") || type === "application/x-yaml" || type === "application/xml") return "text";
  return "binary";
}

function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

function Preview({ run, artifact, attempt }: { run: RunKey; artifact: ArtifactInfo; attempt?: number }) {
  const url = api.artifactUrl(run, artifact.name, attempt);
  const kind = kindOf(artifact);
  const [text, setText] = useState<string | undefined>();
  const [error, setError] = useState<string | undefined>();

  useEffect(() => {
    if (kind !== "json" && kind !== "text") return;
    if (artifact.size > PREVIEW_BYTES) {
      setText(undefined);
      return;
    }
    let cancelled = false;
    fetch(url, { credentials: "same-origin" })
      .then((response) => {
        if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
        return response.text();
      })
      .then((body) => {
        if (cancelled) return;
        if (kind === "json") {
          try {
            setText(JSON.stringify(JSON.parse(body), null, 2));
            return;
          } catch {
            // Not valid JSON after all: show it as it is.
          }
        }
        setText(body);
      })
      .catch((reason: unknown) => !cancelled && setError(String(reason)));
    return () => {
      cancelled = true;
    };
  }, [url, kind, artifact.size]);

  if (error) return <ErrorNote message={error} />;
  if (kind === "image") return <img className="preview-image" src={url} alt={artifact.name} data-testid="artifact-image" />;
  if (kind === "binary" || artifact.size > PREVIEW_BYTES)
    return <div className="muted">No inline preview ({artifact.media_type}, {formatSize(artifact.size)}).</div>;
  return (
    <pre className="preview" data-testid="artifact-preview">
      {text ?? "…"}
    </pre>
  );
}

export function ArtifactList({
  run,
  artifacts,
  attempt,
}: {
  run: RunKey;
  artifacts: ArtifactInfo[];
  /** Serve the files as this attempt left them (default: the run's current artifacts). */
  attempt?: number;
}) {
  const [open, setOpen] = useState<string | undefined>();
  if (artifacts.length === 0) return <div className="muted">no artifacts</div>;
  const current = artifacts.find((artifact) => artifact.name === open);
  return (
    <div data-testid="artifacts">
      <table className="grid">
        <thead>
          <tr>
            <th>Name</th>
            <th title="The attempt that saved it">Attempt</th>
            <th>Type</th>
            <th>Size</th>
            <th>Updated</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {artifacts.map((artifact) => (
            <tr key={artifact.name} className={artifact.name === open ? "selected" : undefined}>
              <td>
                <button
                  type="button"
                  className="link"
                  onClick={() => setOpen(artifact.name === open ? undefined : artifact.name)}
                  data-testid={`artifact-${artifact.name}`}
                >
                  {artifact.name}
                </button>
              </td>
              <td className="num" data-testid={`artifact-attempt-${artifact.name}`}>
                {artifact.attempt ?? ""}
              </td>
              <td>{artifact.media_type}</td>
              <td className="num">{formatSize(artifact.size)}</td>
              <td>{formatTime(artifact.updated_at)}</td>
              <td>
                <a href={api.artifactUrl(run, artifact.name, attempt)} download>
                  download
                </a>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {current && <Preview key={`${attempt ?? ""}/${current.name}`} run={run} artifact={current} attempt={attempt} />}
    </div>
  );
}
