"""Keras and TensorFlow, imported with their start-up lines kept off the terminal.

Importing either writes lines straight to file descriptor 2 (absl's "All log messages before
absl::InitializeLog() is called", oneDNN's round-off notice, "Could not find cuda drivers"), ahead of any
log setting: TF_CPP_MIN_LOG_LEVEL (set in core/__init__.py) does not stop them. Every module in core takes
them from here,

    from core.tf_quiet import keras, tf

so whichever import comes first is the silenced one (tests/test_tf_quiet.py holds core to that). Importing
this module loads neither: the photo path runs LiteRT and never needs TensorFlow.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys

_MODULES = {"keras": "keras", "tf": "tensorflow"}


@contextlib.contextmanager
def native_stderr_silenced():
    """Native libraries (TensorFlow on import, the TFLite runtime) write log lines straight to file
    descriptor 2, ahead of any logging setting: send it to /dev/null meanwhile. Python's own
    exceptions still surface; only lines written during the block are lost."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def __getattr__(name: str):
    """`keras` and `tf`, imported on first use (seconds) with fd 2 silenced."""
    if name not in _MODULES:
        raise AttributeError(f"module 'core.tf_quiet' has no attribute {name!r}")
    with native_stderr_silenced():
        module = importlib.import_module(_MODULES[name])
    globals()[name] = module
    return module
