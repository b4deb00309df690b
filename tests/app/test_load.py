"""The load benchmark's visitors, a few of them at once, all get an emotion from a real server."""

from __future__ import annotations

import re
import subprocess
import sys

from photos import PROJECT_ROOT


def test_concurrent_visitors_all_get_answers():
    finished = subprocess.run(
        [sys.executable, "benchmarks/load_tryit.py", "--sessions", "3", "--seconds", "10"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stdout[-2000:] + finished.stderr[-2000:]
    row = next(line for line in finished.stdout.splitlines() if line.startswith("| 3 |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]  # sessions, pause, answered, per second, errors
    assert int(cells[2]) >= 3 and int(cells[4]) == 0
    assert re.search(r"Server CPU per answered upload: \d+ ms", finished.stdout)
