"""`python -m benchmarks`: run every benchmark and append the results to BENCHMARKS.md."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from pathlib import Path

from benchmarks import (chat, embedding, first_question, fresh_kb, ingestion, pages, retrieval, small_documents,
                        startup)

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = [startup, first_question, embedding, chat, retrieval, fresh_kb, ingestion, small_documents, pages]


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


def main() -> None:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=ROOT).stdout.strip() or "uncommitted"
    header = (f"\n## {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC · commit {commit}\n\n"
              f"Machine: {machine()}\n")
    path = ROOT / "BENCHMARKS.md"
    if not path.exists():
        path.write_text("# Benchmarks\n\nAppended by `make bench`; newest last.\n")
    with path.open("a") as file:
        file.write(header)
    print(header)
    for module in BENCHMARKS:  # each section is kept as soon as it is measured: a long run cut short loses little
        section = module.run()
        with path.open("a") as file:
            file.write(section)
        print(section, flush=True)


if __name__ == "__main__":
    main()
