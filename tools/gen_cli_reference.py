"""Write docs/reference/commands.md from the ``molexp`` Typer app itself.

Every command with its usage, arguments and options (long and short flags, metavar, default,
help). Options hidden from ``--help`` stay out of the reference too; each must be listed in
``HIDDEN_ON_PURPOSE`` with its reason, so nothing is left out by accident.
``python tools/gen_cli_reference.py`` rewrites the file; ``--check`` exits 1 when it is stale
(tests-integration/tooling/test_cli_reference.py runs that check).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from molexp.cli import app
from typer.main import get_command

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs" / "reference" / "commands.md"
HIDDEN_ON_PURPOSE: dict[tuple[str, str], str] = {
    ("execute", "--policy"): "set by `molexp run --jobs N` for its own worker subprocesses",
    ("execute", "--call-id"): "written into a remote task's Slurm job script by the submitter",
    ("execute", "--slurm-job"): "written into a Slurm job array's script by the submitter",
}


def _row(parameter: Any, context: Any) -> str:
    """One table row: what ``--help`` shows of a parameter (typer ships its own click)."""
    if parameter.param_type_name == "argument":
        name = parameter.metavar or (parameter.name or "").upper()
        required = "required" if parameter.required else "optional"
        return f"| `{name}` | argument ({required}) {_text(getattr(parameter, 'help', None))} |"
    record = parameter.get_help_record(context)
    flags, text = record if record is not None else (", ".join(parameter.opts), "")
    return f"| `{_text(flags)}` | {_text(text)} |"


def _text(text: str | None) -> str:
    return " ".join((text or "").split()).replace("|", "\\|")


def render() -> str:
    group: Any = get_command(app)
    context = group.context_class(group, info_name="molexp")
    lines = [
        "# Command reference",
        "",
        "Generated from the `molexp` command itself by `tools/gen_cli_reference.py` (a test fails",
        "when it is out of date). What the commands are for: [CLI](../concepts/cli.md).",
        "",
    ]
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        if command is None or command.hidden:
            continue
        sub = command.context_class(command, info_name=name, parent=context)
        lines += [f"## molexp {name}", "", f"```text\n{command.get_usage(sub)}\n```", ""]
        summary = (command.help or "").strip()
        if summary:
            lines += [" ".join(paragraph.split()) for paragraph in summary.split("\n\n")]
            lines.append("")
        rows = []
        for parameter in command.params:
            flag = parameter.opts[0] if parameter.opts else ""
            if getattr(parameter, "hidden", False):
                if (name, flag) not in HIDDEN_ON_PURPOSE:
                    raise SystemExit(
                        f"molexp {name} {flag} is hidden but not in HIDDEN_ON_PURPOSE: "
                        "document it, or say why it stays hidden"
                    )
                continue
            if flag in ("--help", "-h"):
                continue
            rows.append(_row(parameter, sub))
        if rows:
            lines += ["| parameter | meaning |", "|---|---|", *rows, ""]
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    text = render()
    if "--check" in sys.argv[1:]:
        if not OUTPUT.is_file() or OUTPUT.read_text(encoding="utf-8") != text:
            print(
                f"{OUTPUT.relative_to(ROOT)} is out of date: run python tools/gen_cli_reference.py"
            )
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
