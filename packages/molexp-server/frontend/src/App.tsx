// Application shell: top bar and the hash routes. Chart pages are split into their own chunks.
import { lazy, Suspense } from "react";
import { Loading } from "./components/common";
import { ExperimentPage } from "./pages/ExperimentPage";
import { OverviewPage } from "./pages/OverviewPage";
import { RunPage } from "./pages/RunPage";
import { links, useLocation } from "./router";

const ComparePage = lazy(() => import("./pages/ComparePage"));
const SweepPage = lazy(() => import("./pages/SweepPage"));
const ProjectPage = lazy(() => import("./pages/ProjectPage"));

function Route() {
  const { segments, query } = useLocation();
  const [first, project, second, experiment, view] = segments;
  if (first === "runs" && project) {
    const run = { id: project, project: query.get("p") ?? undefined, experiment: query.get("e") ?? undefined };
    return <RunPage run={run} />;
  }
  if (first === "p" && second === "e" && project && experiment) {
    if (view === "compare") {
      const runs = (query.get("runs") ?? "").split(",").filter(Boolean);
      return <ComparePage project={project} experiment={experiment} runs={runs} />;
    }
    if (view === "sweep") return <SweepPage project={project} experiment={experiment} query={query} />;
    return <ExperimentPage project={project} experiment={experiment} query={query} />;
  }
  if (first === "compare" && segments.length === 1) {
    const runs = (query.get("runs") ?? "").split(",").filter(Boolean);
    return <ComparePage runs={runs} />;
  }
  if (first === "p" && project && segments.length === 2) return <ProjectPage project={project} />;
  if (segments.length === 0) return <OverviewPage />;
  return <div className="card">Unknown page: #{segments.join("/")}</div>;
}

export function App() {
  return (
    <>
      <header className="topbar">
        <a href={links.overview()} className="brand" data-testid="home-link">
          MolExp
        </a>
        <span className="muted">workspace browser</span>
      </header>
      <main>
        <Suspense fallback={<Loading />}>
          <Route />
        </Suspense>
      </main>
    </>
  );
}
