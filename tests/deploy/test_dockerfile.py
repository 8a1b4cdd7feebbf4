"""The Dockerfile (no Docker engine here to build it): hadolint finds nothing, everything it
copies exists and is not excluded by .dockerignore, the wheel it builds can contain the
packages pyproject names, and the entrypoint is the installed console script."""

from __future__ import annotations

import fnmatch
import re
import subprocess
import tomllib

from tests.deploy.support import HADOLINT, ROOT

DOCKERFILE = (ROOT / "Dockerfile").read_text()
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_hadolint_is_clean() -> None:
    r = subprocess.run([HADOLINT, "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def _copied_sources() -> list[str]:
    out: list[str] = []
    for line in DOCKERFILE.splitlines():
        m = re.match(r"COPY\s+(?!--from)(.+)", line.strip())
        if m:
            *sources, _dest = m.group(1).split()
            out.extend(s for s in sources if not s.startswith("--"))
    return out


def test_copied_files_exist_and_reach_the_build_context() -> None:
    ignored = [p.strip().rstrip("/") for p in (ROOT / ".dockerignore").read_text().splitlines()
               if p.strip() and not p.startswith("#")]
    sources = _copied_sources()
    assert sources
    for src in sources:
        assert (ROOT / src).exists(), f"COPY {src}: no such file in the repository"
        top = src.rstrip("/").split("/")[0]
        assert not any(fnmatch.fnmatch(top, pat) for pat in ignored), f"COPY {src}: excluded by .dockerignore"


def test_build_stage_has_what_the_wheel_needs() -> None:
    sources = {s.rstrip("/") for s in _copied_sources()}
    assert "pyproject.toml" in sources
    assert PYPROJECT["project"]["readme"] in sources
    for pattern in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]:
        assert pattern.rstrip("*") in sources, f"package {pattern} is not copied into the build stage"


def test_entrypoint_is_the_console_script() -> None:
    entry = re.search(r'^ENTRYPOINT\s+\["([^"]+)"\]', DOCKERFILE, re.M)
    assert entry is not None
    assert entry.group(1) in PYPROJECT["project"]["scripts"]
    assert PYPROJECT["project"]["scripts"][entry.group(1)] == "scheduler.cli:main"
    cmd = re.search(r'^CMD\s+\["([^"]+)"', DOCKERFILE, re.M)
    assert cmd is not None and cmd.group(1) == "run"


def test_runs_as_the_uid_the_manifests_expect() -> None:
    assert re.search(r"^USER 65532:65532$", DOCKERFILE, re.M)
