"""An in-memory stand-in for the Slurm commands, so the bridge is tested without a scheduler.

``FakeSlurm`` is a ``CommandRunner`` for ``SlurmClient``: it answers ``sbatch --parsable
[--hold]``, ``scontrol release``, ``scancel``, ``squeue -h -r -j IDS -o FMT`` and ``sacct -X -n -P
-j IDS -o FIELDS`` from a table of jobs the test can change (``set_state``, ``forget``). Live jobs
are listed by ``squeue`` only, finished ones by ``sacct`` only, as Slurm does.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from molexp.cli._slurm_text import JobPhase, phase_of

_ARRAY = re.compile(r"^#SBATCH --array=0-(\d+)$", re.MULTILINE)


@dataclass
class FakeJob:
    job_id: str
    script: Path
    indices: list[int | None]
    states: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    """key -> (state with detail, reason, exit code)."""


class FakeSlurm:
    """Answers SlurmClient's commands from an in-memory job table."""

    def __init__(self) -> None:
        self.jobs: dict[str, FakeJob] = {}
        self.commands: list[list[str]] = []
        self.forgotten: set[str] = set()
        self.sbatch_error: str | None = None
        self.on_submit: Callable[[FakeJob], None] | None = None
        self._next_id = 100

    # -- test controls -------------------------------------------------------------------

    def set_state(self, key: str, state: str, reason: str = "None", exit_code: str = "0:0") -> None:
        job = self.jobs[key.split("_")[0]]
        job.states[key] = (state, reason, exit_code)

    def forget(self, key: str) -> None:
        self.forgotten.add(key)

    def state(self, key: str) -> str:
        return self.jobs[key.split("_")[0]].states[key][0]

    def calls(self, name: str) -> list[list[str]]:
        return [command for command in self.commands if command[0] == name]

    # -- the commands --------------------------------------------------------------------

    def __call__(self, command: Sequence[str]) -> subprocess.CompletedProcess[str]:
        command = list(command)
        self.commands.append(command)
        handler = getattr(self, "_" + command[0])
        code, out, err = handler(command[1:])
        return subprocess.CompletedProcess(command, code, out, err)

    def _sbatch(self, args: list[str]) -> tuple[int, str, str]:
        if self.sbatch_error is not None:
            return 1, "", self.sbatch_error
        script = Path(args[-1])
        match = _ARRAY.search(script.read_text())
        indices: list[int | None] = list(range(int(match.group(1)) + 1)) if match else [None]
        job_id = str(self._next_id)
        self._next_id += 1
        job = FakeJob(job_id, script, indices)
        reason = "JobHeldUser" if "--hold" in args else "None"
        for index in indices:
            job.states[_key(job_id, index)] = ("PENDING", reason, "0:0")
        self.jobs[job_id] = job
        if self.on_submit is not None:
            self.on_submit(job)
        return 0, f"{job_id}\n", ""

    def _scontrol(self, args: list[str]) -> tuple[int, str, str]:
        assert args[0] == "release"
        job = self.jobs[args[1]]
        for key, (state, reason, code) in job.states.items():
            if reason == "JobHeldUser":
                job.states[key] = (state, "None", code)
        return 0, "", ""

    def _scancel(self, args: list[str]) -> tuple[int, str, str]:
        for key in args:
            job = self.jobs.get(key.split("_")[0])
            if job is None or key not in job.states:
                return 1, "", f"scancel: error: Kill job error on job id {key}: Invalid job id"
            state, reason, code = job.states[key]
            if phase_of(state.split()[0]) is JobPhase.live:
                job.states[key] = ("CANCELLED by 0", reason, code)
        return 0, "", ""

    def _rows(self, args: list[str], live: bool) -> list[tuple[str, str, str, str]]:
        wanted = args[args.index("-j") + 1].split(",")
        rows = []
        for job_id in wanted:
            job = self.jobs.get(job_id)
            if job is None:
                continue
            for key, (state, reason, code) in job.states.items():
                is_live = phase_of(state.split()[0]) is JobPhase.live
                if key not in self.forgotten and is_live == live:
                    rows.append((key, state, reason, code))
        return rows

    def _squeue(self, args: list[str]) -> tuple[int, str, str]:
        rows = self._rows(args, live=True)
        return 0, "".join(f"{k}|{s}|0:05|UNLIMITED|{r}\n" for k, s, r, _ in rows), ""

    def _sacct(self, args: list[str]) -> tuple[int, str, str]:
        rows = self._rows(args, live=False)
        text = "".join(f"{k}|{s}|{c}|00:01:02|00:01:00|{r}\n" for k, s, r, c in rows)
        return 0, text, ""


def _key(job_id: str, index: int | None) -> str:
    return job_id if index is None else f"{job_id}_{index}"
