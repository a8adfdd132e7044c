"""Parsing and formatting Slurm's text: job ids, sbatch output, durations, states, squeue/sacct."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from molexp.cli._slurm_text import (
    JobKey,
    JobPhase,
    JobState,
    SlurmFormatError,
    expand_job_ids,
    format_duration,
    parse_duration,
    parse_exit_code,
    parse_sacct,
    parse_sbatch_output,
    parse_squeue,
    parse_state,
    phase_of,
)

job_ids = st.integers(min_value=1, max_value=10**9)
indices = st.integers(min_value=0, max_value=100_000)
STATES = [
    "PENDING",
    "RUNNING",
    "COMPLETED",
    "FAILED",
    "TIMEOUT",
    "CANCELLED",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "COMPLETING",
    "REQUEUED",
]
reasons = st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), max_size=40).map(
    str.strip
)


# -- job ids ---------------------------------------------------------------------------------


@given(job_ids, st.one_of(st.none(), indices))
def test_job_key_round_trips_through_its_text(job_id: int, index: int | None) -> None:
    key = JobKey(str(job_id), index)
    assert JobKey.parse(str(key)) == key
    assert str(key) == (str(job_id) if index is None else f"{job_id}_{index}")


@pytest.mark.parametrize("text", ["", "abc", "12_", "_3", "12_3_4", "12.batch", "-1", "12_-1"])
def test_job_key_rejects_non_ids(text: str) -> None:
    with pytest.raises(SlurmFormatError, match="not a Slurm job id"):
        JobKey.parse(text)


def _compress(values: list[int]) -> str:
    """The way Slurm prints a sorted set of array indices: ``0,2-5,9``."""
    runs: list[list[int]] = []
    for value in values:
        if runs and value == runs[-1][-1] + 1:
            runs[-1].append(value)
        else:
            runs.append([value])
    return ",".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs)


@given(
    job_ids,
    st.sets(st.integers(min_value=0, max_value=400), min_size=1, max_size=30),
    st.one_of(st.none(), st.integers(min_value=1, max_value=50)),
)
def test_compressed_array_ranges_expand_to_every_task(
    job_id: int, members: set[int], throttle: int | None
) -> None:
    values = sorted(members)
    suffix = "" if throttle is None else f"%{throttle}"
    text = f"{job_id}_[{_compress(values)}{suffix}]"
    assert expand_job_ids(text) == [JobKey(str(job_id), value) for value in values]


def test_plain_ids_expand_to_themselves() -> None:
    assert expand_job_ids(" 42_7 ") == [JobKey("42", 7)]
    assert expand_job_ids("42") == [JobKey("42")]


@pytest.mark.parametrize("text", ["4_[3-1]", "4_[a-b]", "4_[1,,2]", "4_[-2]"])
def test_bad_array_ranges_are_rejected(text: str) -> None:
    with pytest.raises(SlurmFormatError, match=r"4_\["):
        expand_job_ids(text)


@given(job_ids, st.one_of(st.none(), st.text(alphabet="abcxyz", min_size=1, max_size=8)))
def test_sbatch_parsable_output(job_id: int, cluster: str | None) -> None:
    line = str(job_id) if cluster is None else f"{job_id};{cluster}"
    assert parse_sbatch_output(f"{line}\n") == str(job_id)


@pytest.mark.parametrize("stdout", ["", "\n", "Submitted batch job 12", "abc;local"])
def test_sbatch_output_without_a_job_id_is_an_error(stdout: str) -> None:
    with pytest.raises(SlurmFormatError, match="sbatch --parsable"):
        parse_sbatch_output(stdout)


# -- durations -------------------------------------------------------------------------------


@given(st.integers(min_value=0, max_value=400 * 86400))
def test_durations_round_trip(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("5", 300),
        ("0:30", 30),
        ("1:30", 90),
        ("1:00:00", 3600),
        ("01:02:03", 3723),
        ("2-3", (2 * 24 + 3) * 3600),
        ("1-0:30", 86400 + 1800),
        ("1-02:03:04", 86400 + 2 * 3600 + 3 * 60 + 4),
        ("0:00", 0),
    ],
)
def test_duration_grammar(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["UNLIMITED", "Partition_Limit", "INVALID", "N/A", ""])
def test_unlimited_durations_are_none(text: str) -> None:
    assert parse_duration(text) is None
    assert format_duration(None) == "UNLIMITED"


@pytest.mark.parametrize("text", ["abc", "1:2:3:4", "1-", "x-1:00", "1:-1", "1.5"])
def test_malformed_durations_name_the_text(text: str) -> None:
    with pytest.raises(SlurmFormatError, match="not a Slurm duration"):
        parse_duration(text)


def test_negative_durations_cannot_be_formatted() -> None:
    with pytest.raises(ValueError, match="negative"):
        format_duration(-1)


# -- states ----------------------------------------------------------------------------------


@given(st.sampled_from(STATES), st.one_of(st.none(), st.integers(min_value=0, max_value=99999)))
def test_states_split_into_name_and_detail(state: str, by: int | None) -> None:
    text = state if by is None else f"{state} by {by}"
    assert parse_state(text) == (state, "" if by is None else f"by {by}")


def test_sacct_truncation_marker_is_dropped() -> None:
    assert parse_state("CANCELLED+") == ("CANCELLED", "")
    with pytest.raises(SlurmFormatError):
        parse_state("  ")


@pytest.mark.parametrize(
    ("state", "phase"),
    [
        ("PENDING", JobPhase.live),
        ("RUNNING", JobPhase.live),
        ("COMPLETING", JobPhase.live),
        ("COMPLETED", JobPhase.succeeded),
        ("TIMEOUT", JobPhase.failed),
        ("NODE_FAIL", JobPhase.failed),
        ("OUT_OF_MEMORY", JobPhase.failed),
        ("CANCELLED", JobPhase.cancelled),
        ("SOMETHING_NEW", JobPhase.unknown),
    ],
)
def test_phase_classification(state: str, phase: JobPhase) -> None:
    assert phase_of(state) is phase


@given(st.integers(min_value=0, max_value=255), st.integers(min_value=0, max_value=64))
def test_exit_codes(code: int, signal: int) -> None:
    assert parse_exit_code(f"{code}:{signal}") == (code, signal)


def test_blank_and_bad_exit_codes() -> None:
    assert parse_exit_code(" ") is None
    with pytest.raises(SlurmFormatError, match="exit code"):
        parse_exit_code("x:1")


# -- squeue / sacct rows ---------------------------------------------------------------------


@given(
    st.lists(
        st.tuples(
            job_ids,
            indices,
            st.sampled_from(STATES),
            reasons,
            st.integers(min_value=0, max_value=10**6),
        ),
        min_size=1,
        max_size=10,
        unique_by=lambda row: (row[0], row[1]),
    )
)
def test_squeue_rows_parse_back(rows: list[tuple[int, int, str, str, int]]) -> None:
    text = "".join(
        f"{job}_{index}|{state}|{format_duration(elapsed)}|UNLIMITED|{reason}\n"
        for job, index, state, reason, elapsed in rows
    )
    parsed = parse_squeue(text)
    assert len(parsed) == len(rows)
    for job, index, state, reason, elapsed in rows:
        found = parsed[JobKey(str(job), index)]
        assert (found.state, found.reason, found.elapsed) == (state, reason, elapsed)
        assert found.time_limit is None
        assert found.source == "squeue"


def test_squeue_pending_array_line_expands() -> None:
    parsed = parse_squeue("7_[0-2]|PENDING|0:00|1:00|JobHeldUser\n")
    assert sorted(parsed) == [JobKey("7", 0), JobKey("7", 1), JobKey("7", 2)]
    assert all(state.held and state.time_limit == 60 for state in parsed.values())


def test_sacct_rows_with_details_ranges_and_steps() -> None:
    text = (
        "12_0|COMPLETED|0:0|00:00:03|00:01:00|None\n"
        "12_[1,3-4]|CANCELLED by 0|0:0|00:00:00|Partition_Limit|JobHeldUser\n"
        "12_2|TIMEOUT|0:15|00:01:31|00:01:00|None\n"
        "12_2.batch|CANCELLED|0:15|00:01:31||\n"
    )
    parsed = parse_sacct(text)
    assert sorted(str(key) for key in parsed) == ["12_0", "12_1", "12_2", "12_3", "12_4"]
    timeout = parsed[JobKey("12", 2)]
    assert timeout.phase is JobPhase.failed
    assert timeout.exit_code == (0, 15)
    assert timeout.describe() == (
        "TIMEOUT exit code 0, signal 15 after 00:01:31 (time limit 00:01:00)"
    )
    cancelled = parsed[JobKey("12", 4)]
    assert (cancelled.state, cancelled.detail, cancelled.phase) == (
        "CANCELLED",
        "by 0",
        JobPhase.cancelled,
    )
    assert cancelled.describe() == "CANCELLED by 0 (JobHeldUser) after 00:00:00"


def test_rows_with_missing_fields_name_the_command_and_line() -> None:
    with pytest.raises(SlurmFormatError, match=r"squeue printed '12\|RUNNING'"):
        parse_squeue("12|RUNNING\n")
    with pytest.raises(SlurmFormatError, match="sacct printed"):
        parse_sacct("12|COMPLETED|0:0\n")


def test_reason_may_contain_the_separator() -> None:
    parsed = parse_squeue("5|PENDING|0:00|1:00|(Resources|odd)\n")
    assert parsed[JobKey("5")].reason == "(Resources|odd)"


def test_live_description_has_no_elapsed_time() -> None:
    state = JobState(key=JobKey("3"), state="RUNNING", elapsed=30, time_limit=60)
    assert state.describe() == "RUNNING"
    assert not state.held
