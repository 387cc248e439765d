"""`python -m benchmarks`: run every benchmark and append the results to BENCHMARKS.md."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from pathlib import Path

from benchmarks import embedding, startup

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = [startup, embedding]


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
    sections = [module.run() for module in BENCHMARKS]
    header = (f"\n## {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC · commit {commit}\n\n"
              f"Machine: {machine()}\n")
    text = header + "".join(sections)
    path = ROOT / "BENCHMARKS.md"
    if not path.exists():
        path.write_text("# Benchmarks\n\nAppended by `make bench`; newest last.\n")
    with path.open("a") as file:
        file.write(text)
    print(text)


if __name__ == "__main__":
    main()
