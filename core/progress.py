"""How long work reports how far it has got: one callback type for every loop that a page or a terminal follows."""

from __future__ import annotations

from collections.abc import Callable

ProgressCallback = Callable[[int, int], None]  # called with (items done, items expected; 0 when not known)
