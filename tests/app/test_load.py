"""The load benchmark's visitors, a few of them at once, all get an emotion from a real server.

The benchmark speaks Streamlit's private protocol (its docstring says why): this is what tells us when an
upgrade of Streamlit changes it. Run as a user runs it, since tests never import benchmarks. Slow: a server
loads TensorFlow and the model.
"""

from __future__ import annotations

import re

import pytest

from support.scripts import run_process

pytestmark = pytest.mark.slow


def test_concurrent_visitors_all_get_answers():
    finished = run_process("benchmarks/load_tryit.py", "--sessions", "3", "--seconds", "4")  # each visitor uploads at least once
    assert finished.returncode == 0, finished.stdout[-2000:] + finished.stderr[-2000:]
    row = next(line for line in finished.stdout.splitlines() if line.startswith("| 3 |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]  # sessions, pause, answered, per second, errors
    assert int(cells[2]) >= 3 and int(cells[4]) == 0
    assert re.search(r"Server CPU per answered upload: \d+ ms", finished.stdout)
