"""The terminal scripts as tests run them: in-process through `main(argv)`, or as a user types them.

In-process calls share the test session's one TensorFlow start-up; read what they print with pytest's capsys.
One real subprocess per script (tests/test_scripts.py) checks that it also starts from a shell.
"""

from __future__ import annotations

import importlib
import subprocess
import sys

from support.photos import PROJECT_ROOT

SCRIPTS_DIR = PROJECT_ROOT / "scripts"


def run_main(script: str, *args: object) -> int:
    """`python scripts/<script>.py ARGS...` as a call of its `main(argv)`: its exit code (argparse's too)."""
    module = importlib.import_module(f"scripts.{script}")
    try:
        return module.main([str(arg) for arg in args])
    except SystemExit as exit:  # argparse's --help and usage errors end this way
        return exit.code if isinstance(exit.code, int) else 1


def run_process(*args: object, timeout_s: float = 300) -> subprocess.CompletedProcess:
    """`python ARGS...` from the repository root, as a user runs it: exit code, stdout and stderr as text."""
    return subprocess.run([sys.executable, *map(str, args)], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          timeout=timeout_s)


def error_lines(stderr: str) -> list[str]:
    """The `error: ...` lines a script printed; a user should see exactly one, and no traceback."""
    assert "Traceback" not in stderr, stderr[-2000:]
    return [line for line in stderr.splitlines() if line.startswith("error:")]
