"""The core's wheel runs without the checkout: it carries the templates, the widget and the migrations.

The wheel is built from a copy of the core's sources (so a stale ``build/`` of the checkout cannot leak into it),
installed into a new virtualenv with its dependencies from the package index (about a minute, and it proves the
core declares every package it imports), and run from a folder outside the checkout. Plugins are separate
distributions: the core alone needs no PyTorch.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path

import pytest

from tests.test_processes import free_port, stop, wait_for

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ("templates", "static", "migrations")
# What pip prints when it cannot reach the package index (no network), as opposed to a failing build or install.
UNREACHABLE = ("NewConnectionError", "ProxyError", "ConnectTimeoutError", "Temporary failure in name resolution",
               "Network is unreachable")


def pip(*args, cwd: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *map(str, args)],
                            cwd=cwd, capture_output=True, text=True)
    if result.returncode and any(marker in result.stdout + result.stderr for marker in UNREACHABLE):
        pytest.skip("the package index is not reachable: " + result.stderr.strip().splitlines()[-1])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """``pip wheel --no-deps`` of the core, as a user builds it."""
    folder = tmp_path_factory.mktemp("wheel")
    source = folder / "source"
    shutil.copytree(ROOT / "privex", source / "privex", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    pip("wheel", "--no-deps", source, "-w", folder / "dist", cwd=folder)
    [built] = (folder / "dist").glob("privex-*.whl")
    return built


def test_the_wheel_carries_every_template_static_file_and_migration(wheel):
    in_checkout = {path.relative_to(ROOT).as_posix() for folder in SHIPPED
                   for path in (ROOT / "privex" / folder).rglob("*")
                   if path.is_file() and "__pycache__" not in path.parts}
    assert {"privex/migrations/alembic.ini", "privex/migrations/script.py.mako", "privex/static/widget.js",
            "privex/templates/index.html"} <= in_checkout
    with zipfile.ZipFile(wheel) as archive:
        in_wheel = {name for name in archive.namelist() if name.startswith(tuple(f"privex/{f}/" for f in SHIPPED))}
    assert in_wheel == in_checkout


def get(url: str) -> tuple[int, bytes] | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except OSError:
        return None


def test_the_installed_wheel_migrates_and_serves_outside_the_checkout(
        wheel, tmp_path, subprocess_env, scratch_database):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    # --no-compile: Python compiles what it imports anyway; compiling every installed module took ~25 s more.
    pip("--python", venv / "bin" / "python", "install", "--quiet", "--no-compile", "-c", ROOT / "constraints.txt",
        wheel, cwd=tmp_path)

    elsewhere = tmp_path / "elsewhere"  # the working directory: neither the checkout nor the venv
    elsewhere.mkdir()
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    # No PRIVEX_INSTANCE_PATH: local state (here the secret key) goes to the user's data folder.
    env = {key: value for key, value in subprocess_env.items()
           if key not in ("PRIVEX_INSTANCE_PATH", "PRIVEX_SECRET_KEY", "PYTHONPATH", "VIRTUAL_ENV")}
    env.update({"DATABASE_URL": scratch_database, "XDG_DATA_HOME": str(tmp_path / "data"),
                "XDG_RUNTIME_DIR": str(runtime)})

    def run(*args: str) -> str:
        result = subprocess.run([str(venv / "bin" / args[0]), *args[1:]], cwd=elsewhere, env=env,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        return result.stdout

    where = json.loads(run("python", "-c", "import importlib.util, json, privex; print(json.dumps({"
                           "'privex': privex.__file__, 'torch': importlib.util.find_spec('torch') is not None}))"))
    assert Path(where["privex"]).resolve().is_relative_to(venv.resolve())
    assert not where["torch"]  # the core needs no PyTorch; the plugins that do are their own distributions

    run("privex", "db", "upgrade")  # the shipped migrations build the schema on an empty database
    run("privex", "db", "check")  # ... and it matches the installed models

    port = free_port()
    with (tmp_path / "serve.log").open("w") as log:
        server = subprocess.Popen([str(venv / "bin" / "privex"), "serve", "--no-worker", "--port", str(port)],
                                  cwd=elsewhere, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            base = f"http://127.0.0.1:{port}"
            status, spec = wait_for(lambda: get(f"{base}/api/v1/openapi.json"), 120, interval=0.5,
                                    what="privex serve to answer")
            assert status == 200 and "/api/v1/health" in json.loads(spec)["paths"]
            status, page = get(f"{base}/")
            assert status == 200 and b"<h1>PrivexBot</h1>" in page  # templates/index.html
            assert get(f"{base}/widget.js") == (200, (ROOT / "privex" / "static" / "widget.js").read_bytes())
        finally:
            code = stop(server, signal.SIGINT, timeout=60)
    assert code == 0, (tmp_path / "serve.log").read_text()[-3000:]
    assert (tmp_path / "data" / "privex" / "secret_key").is_file()
    assert list(elsewhere.iterdir()) == []  # nothing written where it happened to start
