"""Entry point of the ``molexp`` executable (also ``python -m molexp.cli``).

Runs the typer application in non-standalone mode so that every error, including click's usage
errors, is reported here as one line on stderr with the right exit code (2 usage, 1 otherwise);
``MOLEXP_DEBUG=1`` adds the traceback. Warnings (a listing skipping a broken record) are printed as
one ``warning: ...`` line each, without the source line Python would show.
"""

from __future__ import annotations

import sys
import traceback
import warnings
from collections.abc import Sequence
from typing import TextIO

from ._errors import EXIT_FAILURE, EXIT_USAGE, CliError, debug_enabled, one_line

__all__ = ["main", "run_cli"]

EXIT_INTERRUPTED = 130


def run_cli(argv: Sequence[str] | None = None) -> int:
    """Run ``molexp`` with ``argv`` (default: ``sys.argv[1:]``) and return the exit code."""
    import typer
    from typer.main import get_command

    from ._app import app

    args = list(sys.argv[1:] if argv is None else argv)
    command = get_command(app)
    try:
        from ._cmd_remote import forward

        forwarded = forward(args)  # -w ssh://...: the command runs on that host
        if forwarded is not None:
            return forwarded
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            result = command.main(args=args, prog_name="molexp", standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        _report("interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:
        message, code = describe_error(exc)
        if debug_enabled():
            traceback.print_exc()
        _report(message)
        return code
    return result if isinstance(result, int) else 0


def describe_error(exc: BaseException) -> tuple[str, int]:
    """The one-line message and exit code for an exception escaping a command."""
    if isinstance(exc, CliError):
        return one_line(exc.message), exc.exit_code
    if isinstance(exc, PermissionError) and exc.filename is not None:
        from molexp.assets import explain_permission_error

        # What blocks the write (a path another lab member owns) and how to fix it.
        return one_line(str(explain_permission_error(exc))), EXIT_FAILURE
    click_message = getattr(exc, "format_message", None)
    click_code = getattr(exc, "exit_code", None)
    if callable(click_message) and isinstance(click_code, int):
        # click/typer usage errors (missing argument, unknown option, bad value).
        context = getattr(exc, "ctx", None)
        command_path = getattr(context, "command_path", "molexp")
        text = one_line(str(click_message()))
        hint = f" (see `{command_path} --help`)" if click_code == EXIT_USAGE else ""
        return f"{command_path}: {text}{hint}", click_code
    text = str(exc)
    detail = f"{type(exc).__name__}: {one_line(text)}" if text else type(exc).__name__
    return detail, EXIT_FAILURE


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """Warnings (e.g. a broken record skipped by a listing) as one ``warning: ...`` line."""
    sys.stderr.write(f"warning: {one_line(str(message))}\n")
    sys.stderr.flush()


def _report(message: str) -> None:
    sys.stderr.write(f"error: {message}\n")
    sys.stderr.flush()


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry: run the CLI and exit with its code."""
    raise SystemExit(run_cli(argv))


if __name__ == "__main__":
    main()
