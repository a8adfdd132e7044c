"""Slurm options (validation, layering), the rendered batch scripts, and the profile keys."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from molexp.cli._slurm_script import (
    ArrayScript,
    SlurmOptionError,
    SlurmOptions,
    render_array_script,
    render_task_script,
)
from molexp.cli.profiles import (
    ExecutionSettings,
    ProfileError,
    ProfileFile,
)

# -- options ---------------------------------------------------------------------------------


def test_options_render_as_sbatch_directives() -> None:
    options = SlurmOptions.from_mapping(
        {
            "partition": "gpu",
            "time": 90,
            "cpus_per_task": 4,
            "mem": "8G",
            "gpus": "a100:2",
            "account": "chem",
            "qos": "high",
            "extra_sbatch": ["--constraint=avx2", "#SBATCH --exclusive"],
            "preamble": ["module load cuda"],
        },
        where="test",
    )
    assert options.directives() == [
        "#SBATCH --partition=gpu",
        "#SBATCH --time=01:30:00",
        "#SBATCH --cpus-per-task=4",
        "#SBATCH --mem=8G",
        "#SBATCH --gpus=a100:2",
        "#SBATCH --account=chem",
        "#SBATCH --qos=high",
        "#SBATCH --constraint=avx2",
        "#SBATCH --exclusive",
    ]
    assert options.preamble == ("module load cuda",)
    assert not options.hold


@pytest.mark.parametrize(
    ("value", "normalized"),
    [(1, "00:01:00"), ("30", "00:30:00"), ("1:30:00", "01:30:00"), ("2-0", "2-00:00:00")],
)
def test_time_is_normalized(value: object, normalized: str) -> None:
    assert SlurmOptions.from_mapping({"time": value}, where="t").time == normalized


@given(st.integers(min_value=1, max_value=100_000))
def test_any_whole_number_of_minutes_is_a_valid_time(minutes: int) -> None:
    options = SlurmOptions.from_mapping({"time": minutes}, where="t")
    assert options.directives() == [f"#SBATCH --time={options.time}"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"partiton": "gpu"}, "unknown Slurm option 'partiton'; known: partition"),
        ({"time": "0:30"}, "smallest time limit is 1 minute"),
        ({"time": "soon"}, "not a Slurm duration"),
        ({"time": True}, "must be minutes or a Slurm time"),
        ({"cpus_per_task": 0}, "cpus_per_task must be a positive integer, got 0"),
        ({"cpus_per_task": "4"}, "cpus_per_task must be a positive integer"),
        ({"partition": "gpu large"}, "partition must be one word"),
        ({"account": ""}, "account must be one word"),
        ({"mem": 3.5}, "mem must be a string"),
        ({"extra_sbatch": "--exclusive"}, "extra_sbatch must be a list of lines"),
        ({"extra_sbatch": ["exclusive"]}, "is not an sbatch option"),
        ({"preamble": ["module load a\nrm -rf /"]}, "one non-empty line"),
        ({"hold": "yes"}, "hold must be true or false"),
    ],
)
def test_invalid_options_name_the_option_and_value(data: dict[str, object], message: str) -> None:
    with pytest.raises(SlurmOptionError, match="^where: ") as info:
        SlurmOptions.from_mapping(data, where="where")
    assert message in str(info.value)


def test_later_layers_override_and_none_keeps() -> None:
    base = SlurmOptions.from_mapping({"partition": "cpu", "account": "chem"}, where="profile")
    task = base.merged({"partition": "gpu", "account": None, "gpus": 1}, where="task")
    assert (task.partition, task.account, task.gpus) == ("gpu", "chem", "1")
    assert base.partition == "cpu"


def test_hold_line_in_extra_sbatch_means_hold_and_is_not_rendered() -> None:
    options = SlurmOptions.from_mapping({"extra_sbatch": ["--hold", "--exclusive"]}, where="t")
    assert options.hold
    assert options.directives() == ["#SBATCH --exclusive"]


def test_to_json_keeps_only_set_options() -> None:
    options = SlurmOptions.from_mapping({"time": 5, "preamble": ["ml x"], "hold": True}, where="t")
    assert options.to_json() == {"time": "00:05:00", "preamble": ["ml x"], "hold": True}


# -- rendered scripts, executed by bash with a stand-in interpreter -------------------------


@pytest.fixture
def fake_python(tmp_path: Path) -> Path:
    """An "interpreter" that prints the arguments it was called with, one per line."""
    script = tmp_path / "bin" / "python"
    script.parent.mkdir()
    script.write_text('#!/bin/sh\nfor arg in "$@"; do echo "$arg"; done\n')
    script.chmod(0o755)
    return script


def _bash(script: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(script)],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_array_script_maps_each_index_to_its_run_dir(tmp_path: Path, fake_python: Path) -> None:
    files = ArrayScript(tmp_path / "exp dir" / "slurm" / "sub")
    files.directory.mkdir(parents=True)
    run_dirs = [tmp_path / f"runs/run-{i}" for i in range(3)]
    files.manifest.write_text("".join(f"{d}\n" for d in run_dirs))
    options = SlurmOptions.from_mapping(
        {"partition": "debug", "preamble": ["echo preamble-ran"]}, where="t"
    )
    text = render_array_script(
        files,
        options,
        count=3,
        job_name="molexp-grid",
        python=str(fake_python),
        heartbeat_interval=12.5,
    )
    assert text.startswith("#!/bin/bash\n#SBATCH --job-name=molexp-grid\n#SBATCH --array=0-2\n")
    assert f'#SBATCH --output="{files.directory}/%a.out"' in text
    assert "#SBATCH --partition=debug" in text
    files.script.write_text(text)
    for index in (0, 2):
        done = _bash(files.script, {"SLURM_ARRAY_TASK_ID": str(index), "SLURM_ARRAY_JOB_ID": "77"})
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == [
            "preamble-ran",
            "-m",
            "molexp.cli",
            "execute",
            str(run_dirs[index]),
            "--slurm-job",
            f"77_{index}",
            "--heartbeat-interval",
            "12.5",
        ]
    missing = _bash(files.script, {"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_JOB_ID": "77"})
    assert missing.returncode == 2
    assert "no run for array index 3" in missing.stderr


@pytest.mark.parametrize("count", [0, 1001])
def test_array_size_is_bounded(tmp_path: Path, count: int) -> None:
    with pytest.raises(SlurmOptionError, match="1 to 1000 runs"):
        render_array_script(
            ArrayScript(tmp_path),
            SlurmOptions(),
            count=count,
            job_name="j",
            python="python",
            heartbeat_interval=30,
        )


def test_task_script_runs_the_one_task(tmp_path: Path, fake_python: Path) -> None:
    run_dir = tmp_path / "run-abc"
    options = SlurmOptions.from_mapping({"time": 10, "mem": "1G"}, where="t")
    text = render_task_script(
        options,
        job_name="molexp-task-fit",
        python=str(fake_python),
        run_dir=run_dir,
        task_name="fit it",
        call_id="c0ffee",
        log_dir=tmp_path / "logs",
    )
    assert f"#SBATCH --output={tmp_path}/logs/slurm-%j.out" in text
    assert "#SBATCH --time=00:10:00\n#SBATCH --mem=1G\n" in text
    script = tmp_path / "job.sh"
    script.write_text(text)
    done = _bash(script, {})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "-m",
        "molexp.cli",
        "execute",
        str(run_dir),
        "--task",
        "fit it",
        "--call-id",
        "c0ffee",
    ]


def test_paths_that_cannot_go_into_sbatch_lines_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SlurmOptionError, match="cannot be written into an #SBATCH line"):
        render_task_script(
            SlurmOptions(),
            job_name="j",
            python="python",
            run_dir=tmp_path,
            task_name="t",
            call_id="c",
            log_dir=tmp_path / 'we"ird',
        )


# -- profile keys ----------------------------------------------------------------------------


def _profiles(tmp_path: Path, text: str) -> ProfileFile:
    path = tmp_path / "molexp.toml"
    path.write_text(text)
    return ProfileFile.load(path)


PROFILE_TEXT = """
[defaults]
scale = 1.0
heartbeat_interval = 10
[defaults.slurm]
account = "chem"

[profiles.cluster]
executor = "slurm"
[profiles.cluster.slurm]
partition = "debug"
time = 30
preamble = ["module load python"]

[profiles.gpu]
extends = "cluster"
scale = 2.0
[profiles.gpu.slurm]
gpus = 1
"""


def test_execution_keys_merge_like_config_but_stay_out_of_it(tmp_path: Path) -> None:
    profiles = _profiles(tmp_path, PROFILE_TEXT)
    gpu = profiles.execution("gpu")
    assert gpu.executor == "slurm"
    assert gpu.heartbeat_interval == 10.0
    assert (gpu.slurm.account, gpu.slurm.partition, gpu.slurm.gpus) == ("chem", "debug", "1")
    assert gpu.slurm.time == "00:30:00"
    assert profiles.resolve("gpu").config == {"scale": 2.0}
    assert profiles.execution() == ExecutionSettings(
        heartbeat_interval=10.0, slurm=SlurmOptions(account="chem")
    )


def test_execution_keys_do_not_change_the_config_hash(tmp_path: Path) -> None:
    plain = _profiles(tmp_path, "[profiles.p]\nscale = 1.0\n").resolve("p")
    on_slurm = _profiles(
        tmp_path, '[profiles.p]\nscale = 1.0\nexecutor = "slurm"\n[profiles.p.slurm]\ntime = 5\n'
    ).resolve("p")
    assert plain.config_hash == on_slurm.config_hash


def test_set_overrides_reach_the_execution_keys(tmp_path: Path) -> None:
    profiles = _profiles(tmp_path, PROFILE_TEXT)
    settings = profiles.execution("cluster", ["executor=local", "slurm.time=2:00:00"])
    assert settings.executor == "local"
    assert settings.slurm.time == "02:00:00"
    with pytest.raises(ProfileError, match="profile 'cluster' with --set: slurm: time"):
        profiles.execution("cluster", ["slurm.time=never"])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[profiles.p]\nexecutor = "pbs"\n',
            "profile 'p': executor must be one of 'local', 'slurm'",
        ),
        ("[profiles.p]\nheartbeat_interval = 0\n", "heartbeat_interval must be a positive"),
        ('[profiles.p]\nslurm = "debug"\n', "slurm must be a table"),
        ("[profiles.p.slurm]\npartiton = 'x'\n", "profile 'p': slurm: unknown Slurm option"),
        ("[defaults.slurm]\ncpus_per_task = -1\n", "profile 'default': slurm: cpus_per_task"),
    ],
)
def test_bad_execution_keys_are_reported_when_the_file_loads(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ProfileError) as info:
        _profiles(tmp_path, text)
    assert str(info.value).startswith(str(tmp_path / "molexp.toml"))
    assert message in str(info.value)
