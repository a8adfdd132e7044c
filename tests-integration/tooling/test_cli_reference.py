"""The command reference (docs/reference/commands.md) is generated from the Typer app; it must
list every command and option as they are now (a new or changed option fails here until
``python tools/gen_cli_reference.py`` is run), and hidden options are hidden on purpose."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from molexp.cli import app
from typer.main import get_command

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "docs" / "reference" / "commands.md"


def test_the_command_reference_is_up_to_date() -> None:
    check = subprocess.run(
        [sys.executable, "tools/gen_cli_reference.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_every_visible_command_and_option_is_in_the_reference() -> None:
    text = REFERENCE.read_text(encoding="utf-8")
    group = get_command(app)
    context = group.context_class(group, info_name="molexp")
    for name in group.list_commands(context):  # type: ignore[attr-defined]
        command = group.get_command(context, name)  # type: ignore[attr-defined]
        if command.hidden:
            continue
        assert f"## molexp {name}\n" in text
        section = text.split(f"## molexp {name}\n", 1)[1].split("\n## ", 1)[0]
        for parameter in command.params:
            if getattr(parameter, "hidden", False) or "--help" in parameter.opts:
                continue
            for flag in parameter.opts if parameter.param_type_name == "option" else []:
                assert flag in section, f"molexp {name} {flag} is not in {REFERENCE.name}"
