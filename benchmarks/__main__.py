"""`python -m benchmarks [NAME ...]`: run every benchmark (or those named, e.g. `chat retrieval`) and append the
results to BENCHMARKS.md."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
from pathlib import Path

from benchmarks import (chat, chat_floor, chat_profile, chatflow_engine, embedding, first_question, fresh_kb,
                        ingestion, pages, retrieval, small_documents, startup)

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = [startup, first_question, embedding, chat, chat_floor, chat_profile, chatflow_engine, retrieval, fresh_kb,
              ingestion, small_documents, pages]


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB, Python {platform.python_version()}"


def main(names: list[str] | None = None) -> None:
    known = {module.__name__.rsplit(".", 1)[1]: module for module in BENCHMARKS}
    unknown = [name for name in names or [] if name not in known]
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    chosen = [known[name] for name in names] if names else BENCHMARKS
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=ROOT).stdout.strip() or "uncommitted"
    only = f" (only {', '.join(names)}: `python -m benchmarks {' '.join(names)}`)" if names else ""
    header = (f"\n## {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC · commit {commit}{only}\n\n"
              f"Machine: {machine()}\n")
    path = ROOT / "BENCHMARKS.md"
    if not path.exists():
        path.write_text("# Benchmarks\n\nAppended by `make bench`; newest last.\n")
    with path.open("a") as file:
        file.write(header)
    print(header)
    for module in chosen:  # each section is kept as soon as it is measured: a long run cut short loses little
        section = module.run()
        with path.open("a") as file:
            file.write(section)
        print(section, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
