"""Run a code node's Python in a process of its own, contained, and bring back its JSON result.

The contract for the user's code (the same as Dify's code node): define ``def main(**inputs)`` returning a dict that
JSON can encode; the inputs are JSON values. Nothing else goes in (no environment, no files, no network) and only
that dict comes out (``print`` goes nowhere).

Never ``exec`` in the server process: Langflow's three remote-code-execution CVEs came from exactly that. Here the
server starts ``python -I -S sandbox_runner.py`` (isolated mode: no PYTHON* variables, no site-packages, no script
folder on the path) with an empty environment in a new session, writes the request to its stdin and reads one JSON
object from its stdout. The runner contains itself before any user code runs (see sandbox_runner.py): namespaces with
no network, a chroot holding only the interpreter, the system libraries and a private tmpfs ``/tmp``, resource limits,
user 65534, a seccomp allow-list. This side adds the limits a process cannot put on itself: wall-clock time (the
whole process group is killed) and output size (reading stops and the process is killed).

Where that containment is impossible (no libseccomp, not root, namespaces refused) ``run_code`` raises
``SandboxUnavailable`` and no user code runs, unless the operator sets ``PRIVEX_CHATFLOW_UNSAFE_CODE=1``; then only
the limits that could be applied hold.
"""

from __future__ import annotations

import importlib.util
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

RUNNER = Path(__file__).with_name("sandbox_runner.py")
DEFAULT_LIMITS = {"cpu_seconds": 5, "memory_mb": 256, "wall_seconds": 10, "output_bytes": 1_000_000,
                  "file_mb": 10, "disk_mb": 16}
MAX_CODE_CHARS = 100_000
MAX_INPUT_BYTES = 1_000_000
STDERR_KEEP = 4000  # enough of the runner's stderr to explain a crash
# Sandboxes one server process runs at once: each may take its memory limit, and many visitors' flows (parallel loops
# too) must not add up to more than the machine has. A run waits for a free one up to its wall-clock limit.
MAX_CONCURRENT = 4
_slots = threading.BoundedSemaphore(MAX_CONCURRENT)


class CodeFailed(Exception):
    """The code ran and failed or hit a limit; the message says which in the user's terms."""


class SandboxUnavailable(Exception):
    """Code cannot be contained on this machine, so it was not run."""


def _read_only_paths() -> list[str]:
    """What the chroot shows, read-only: the system libraries, and the interpreter's own prefix (pyenv, a venv's
    base) when it lives elsewhere."""
    paths = ["/usr", "/lib", "/lib64", "/bin", "/etc/ld.so.cache", "/dev/null", "/dev/zero", "/dev/urandom"]
    prefix = os.path.realpath(sys.base_prefix)
    if not prefix.startswith("/usr/") and prefix != "/usr":
        paths.append(prefix)
    return paths


def _seccomp_module() -> str | None:
    """The path of pyseccomp.py, found without importing it here (the import loads libseccomp)."""
    spec = importlib.util.find_spec("pyseccomp")
    return spec.origin if spec and spec.origin else None


def _check_request(code, inputs) -> None:
    if not isinstance(code, str) or not code.strip():
        raise CodeFailed("the code is empty: define main(**inputs) returning a dict")
    if len(code) > MAX_CODE_CHARS:
        raise CodeFailed(f"the code is longer than {MAX_CODE_CHARS} characters")
    if not isinstance(inputs, dict) or not all(isinstance(k, str) and k.isidentifier() for k in inputs):
        raise CodeFailed("the inputs must be an object whose names are Python identifiers")
    try:
        encoded = json.dumps(inputs, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise CodeFailed(f"the inputs are not JSON: {error}") from None
    if len(encoded) > MAX_INPUT_BYTES:
        raise CodeFailed(f"the inputs are larger than {MAX_INPUT_BYTES // 1_000_000} MB")


def _pump(process, request: bytes, limits) -> tuple[bytes, bytes, str | None]:
    """Feed stdin and read stdout/stderr until the process ends, the wall clock runs out or the output grows
    too large; return (stdout, stderr, what stopped it or None)."""
    selector = selectors.DefaultSelector()
    selector.register(process.stdin, selectors.EVENT_WRITE)
    selector.register(process.stdout, selectors.EVENT_READ)
    selector.register(process.stderr, selectors.EVENT_READ)
    out, err, pending, stopped = bytearray(), bytearray(), memoryview(request), None
    deadline = time.monotonic() + float(limits["wall_seconds"])
    open_streams = 3
    while open_streams and stopped is None:
        left = deadline - time.monotonic()
        if left <= 0:
            stopped = "wall"
            break
        for key, _ in selector.select(timeout=left):
            if key.fileobj is process.stdin:
                try:
                    written = os.write(process.stdin.fileno(), pending[:65536])
                except (BrokenPipeError, OSError):
                    written = len(pending)
                pending = pending[written:]
                if not pending:
                    selector.unregister(process.stdin)
                    process.stdin.close()
                    open_streams -= 1
                continue
            chunk = os.read(key.fileobj.fileno(), 65536)
            if not chunk:
                selector.unregister(key.fileobj)
                open_streams -= 1
            elif key.fileobj is process.stdout:
                out += chunk
                if len(out) > int(limits["output_bytes"]) + 64:  # the envelope adds a few bytes
                    stopped = "output"
            elif len(err) < STDERR_KEEP:
                err += chunk
    selector.close()
    return bytes(out), bytes(err[:STDERR_KEEP]), stopped


def _kill(process) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _signal_message(returncode: int, limits) -> str:
    sig = -returncode
    if sig in (signal.SIGXCPU, signal.SIGKILL):
        return f"the code used more than {limits['cpu_seconds']} s of CPU"
    if sig == signal.SIGSEGV:
        return f"the code crashed (segmentation fault), possibly out of memory (limit {limits['memory_mb']} MB)"
    if sig == signal.SIGSYS:
        return "the code made a system call the sandbox does not allow"
    return f"the code was stopped by signal {signal.Signals(sig).name}"


def run_code(code: str, inputs: dict, *, limits: dict | None = None, allow_unsafe: bool = False) -> dict:
    """Run ``main(**inputs)`` from ``code`` in the sandbox; return its dict.

    Raises ``CodeFailed`` (the user's exception with its line, or the limit it crossed) and ``SandboxUnavailable``
    (the machine cannot contain code and ``allow_unsafe`` is off; nothing ran)."""
    limits = {**DEFAULT_LIMITS, **(limits or {})}
    _check_request(code, inputs)
    seccomp = _seccomp_module()
    if seccomp is None and not allow_unsafe:
        raise SandboxUnavailable("code nodes cannot run: the seccomp library (pyseccomp + libseccomp) is not "
                                 "installed, so the code could not be contained")
    if not _slots.acquire(timeout=float(limits["wall_seconds"])):
        raise CodeFailed(f"the server is busy running other code (at most {MAX_CONCURRENT} at once); try again")
    try:
        return _run_contained(code, inputs, limits, seccomp, allow_unsafe)
    finally:
        _slots.release()


def _run_contained(code, inputs, limits, seccomp, allow_unsafe) -> dict:
    folder = tempfile.mkdtemp(prefix="privex-code-")
    try:
        os.chmod(folder, 0o700)
        root = os.path.join(folder, "root")
        os.mkdir(root, 0o700)
        request = json.dumps({"source": code, "inputs": inputs, "limits": limits, "root": root,
                              "read_only": _read_only_paths(), "seccomp_module": seccomp,
                              "unsafe": bool(allow_unsafe)}).encode()
        process = subprocess.Popen(
            [os.path.realpath(sys.executable), "-I", "-S", "-B", str(RUNNER)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={}, cwd=folder, start_new_session=True,
            close_fds=True)
        started = time.monotonic()
        try:
            out, err, stopped = _pump(process, request, limits)
            if stopped is None:
                # Its streams closed: it is exiting, or it closed them and carries on; the wall clock still holds.
                left = float(limits["wall_seconds"]) - (time.monotonic() - started)
                try:
                    process.wait(timeout=max(0.1, left))
                except subprocess.TimeoutExpired:
                    stopped = "wall"
        finally:
            if process.poll() is None:
                _kill(process)
            process.wait()
            for stream in (process.stdin, process.stdout, process.stderr):
                if stream and not stream.closed:
                    stream.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return _answer(out, err, stopped, process.returncode, limits)


def _answer(out: bytes, err: bytes, stopped, returncode, limits) -> dict:
    if stopped == "wall":
        raise CodeFailed(f"the code ran longer than {limits['wall_seconds']} s")
    if stopped == "output":
        raise CodeFailed(f"the code's output is larger than {_size(limits['output_bytes'])}")
    if returncode and returncode < 0:
        raise CodeFailed(_signal_message(returncode, limits))
    try:
        answer = json.loads(out)
    except ValueError:
        detail = err.decode("utf-8", "replace").strip().splitlines()[-1:]
        reason = f" ({detail[0][:300]})" if detail else ""
        raise CodeFailed(f"the code ended without returning a result{reason}") from None
    if not isinstance(answer, dict):
        raise CodeFailed("the code ended without a result")
    if "unavailable" in answer:
        raise SandboxUnavailable(f"code nodes cannot run on this server: {answer['unavailable']}")
    if not answer.get("ok"):
        raise CodeFailed(str(answer.get("error") or "the code failed"))
    if len(out) > int(limits["output_bytes"]):
        raise CodeFailed(f"the code's output is larger than {_size(limits['output_bytes'])}")
    return answer["result"]


def _size(n: int) -> str:
    n = int(n)
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000} MB"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000} kB"
    return f"{n} bytes"
