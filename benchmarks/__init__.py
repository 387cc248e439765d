"""Benchmarks run by `make bench`; each appends its results to BENCHMARKS.md with the machine and date."""

from __future__ import annotations

import os


def child_env() -> dict[str, str]:
    """The environment for a benchmark's child process: minus anything that would point it at the developer's
    database or Redis."""
    from privex.config import SETTINGS

    names = {setting.env for setting in SETTINGS}
    return {key: value for key, value in os.environ.items() if key not in names}
