"""TensorFlow's start-up lines never reach a user's terminal: core imports Keras and TensorFlow in one place."""

from __future__ import annotations

import ast

from support.photos import PROJECT_ROOT
from support.scripts import run_process

LOUD = {"keras", "tensorflow"}  # importing either writes straight to fd 2


def test_only_tf_quiet_imports_keras_or_tensorflow():
    """Whichever module imports them first must be the silenced import, so every module takes them from it."""
    offenders = []
    for path in sorted((PROJECT_ROOT / "core").rglob("*.py")):
        if path.name == "tf_quiet.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else [])
            offenders += [f"{path.relative_to(PROJECT_ROOT)}:{node.lineno} {name}"
                          for name in names if name.split(".")[0] in LOUD]
    assert offenders == []


def test_building_a_model_prints_nothing_and_importing_tf_quiet_loads_nothing():
    built = run_process("-c", "import sys; import core.tf_quiet; "
                        "assert not {'keras', 'tensorflow'} & set(sys.modules), 'tf_quiet imported TensorFlow'; "
                        "from core.models import build_model; build_model('vgg', 7)")
    assert built.returncode == 0, built.stderr[-2000:]
    assert built.stderr == ""
