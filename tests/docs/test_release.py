"""What a release publishes, as README.md's "Release" makes it.

- The image is named once per kustomize layer: ``deploy/``, ``deploy/extender/`` and
  ``deploy/webhook/`` each set it in ``images:`` (their Deployments say ``image: vecsched``),
  with the version of pyproject.toml, and ``make image`` tags the same name.
- ``make dist`` builds the sdist and the wheel from it with pip and the setuptools
  pyproject.toml names; the wheel, installed with ``--no-deps`` into an empty venv, brings
  both console scripts, which run from it.
- ``make image`` says in one line when Docker is missing or not running, else runs
  ``docker build -t IMAGE .``. Its Docker is a script on PATH here, so that each branch
  of the recipe is reached whatever this machine has installed.
- The release block's edits (``VERSION=`` and its two ``sed -i``), run on a copy, set
  pyproject.toml's version and the three tags, and change nothing else in those files.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path
from typing import Any, Final

import pytest
import yaml

ROOT: Final = Path(__file__).resolve().parents[2]
BIN: Final = Path(sys.executable).parent
KUBECTL: Final = str(BIN / "kubectl")
MAKE: Final = shutil.which("make") or "make"
PYPROJECT: Final = tomllib.loads((ROOT / "pyproject.toml").read_text())
VERSION: Final[str] = PYPROJECT["project"]["version"]
REPOSITORY: Final = "ghcr.io/vecsched/vecsched"
LAYERS: Final = ["deploy", "deploy/extender", "deploy/webhook"]


def _kustomize(layer: str) -> list[dict[str, Any]]:
    r = subprocess.run([KUBECTL, "kustomize", str(ROOT / layer)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return [d for d in yaml.safe_load_all(r.stdout) if d]


@pytest.mark.parametrize("layer", LAYERS)
def test_each_layer_names_the_release_image_once(layer: str) -> None:
    kustomization = yaml.safe_load((ROOT / layer / "kustomization.yaml").read_text())
    # one entry: the placeholder the Deployment names -> the registry's name, at pyproject's version
    assert kustomization["images"] == [{"name": "vecsched", "newName": REPOSITORY, "newTag": VERSION}]
    built = [c["image"] for o in _kustomize(layer) if o["kind"] == "Deployment"
             for c in o["spec"]["template"]["spec"]["containers"]]
    assert built == [f"{REPOSITORY}:{VERSION}"]  # one container, the image with the release's tag


def test_the_tag_is_nowhere_else_under_deploy() -> None:
    # Only the three kustomizations name the registry; a manifest with its own tag would drift.
    naming = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "deploy").rglob("*.yaml") if REPOSITORY in p.read_text())
    assert naming == sorted(f"{layer}/kustomization.yaml" for layer in LAYERS)


# (docker on PATH: None for none, else the script's body; IMAGE= given to make; exit status,
#  the line on stderr, the arguments docker build got)
IMAGE_CASES: Final[list[tuple[str, str | None, str | None, int, str, list[str] | None]]] = [
    ("no-docker", None, None, 2,
     "make image needs docker (https://docs.docker.com/engine/install/); it is not on PATH", None),
    # `docker info` fails: the client is there, the daemon is not
    ("no-daemon", 'if [ "$1" = info ]; then echo "Cannot connect to the Docker daemon" >&2; exit 1; fi', None, 2,
     "make image needs a running Docker daemon: docker info fails", None),
    # the default name: pyproject's version
    ("builds", 'if [ "$1" = build ]; then printf "%s\\n" "$@" > "$DOCKER_ARGS"; fi', None, 0, "",
     ["build", "-t", f"{REPOSITORY}:{VERSION}", "."]),
    ("builds-another-name", 'if [ "$1" = build ]; then printf "%s\\n" "$@" > "$DOCKER_ARGS"; fi',
     "registry.example/vecsched:dev", 0, "", ["build", "-t", "registry.example/vecsched:dev", "."]),
]


@pytest.mark.parametrize(("docker", "image", "status", "line", "build"),
                         [c[1:] for c in IMAGE_CASES], ids=[c[0] for c in IMAGE_CASES])
def test_make_image(docker: str | None, image: str | None, status: int, line: str, build: list[str] | None,
                    tmp_path: Path) -> None:
    path = tmp_path / "bin"
    path.mkdir()
    if docker is not None:
        (path / "docker").write_text(f"#!/bin/sh\n{docker}\n")
        (path / "docker").chmod(0o755)
    args = tmp_path / "docker-args"
    r = subprocess.run([MAKE, "--no-print-directory", "-C", str(ROOT), "image",
                        *([f"IMAGE={image}"] if image else [])],
                       capture_output=True, text=True, timeout=60,
                       env={**os.environ, "PATH": f"{path}:/usr/bin:/bin", "DOCKER_ARGS": str(args)})
    assert r.returncode == status, r.stdout + r.stderr
    if line:
        # the one line, then make's own line naming the target (make exits 2 for a failed recipe)
        assert r.stderr.splitlines()[0] == line, r.stderr
        assert not args.exists()
    else:
        assert args.read_text().splitlines() == build


def test_make_dist_builds_a_wheel_that_installs_the_console_scripts(tmp_path: Path) -> None:
    # A copy of what the sdist is built from, so that the build leaves nothing in the checkout.
    src = tmp_path / "src"
    src.mkdir()
    tops = {"Makefile", "pyproject.toml", PYPROJECT["project"]["readme"], "LICENSE",
            *(p.rstrip("*") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"])}
    for name in tops:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, src / name)
    # BIN: the venv the tests run in (`make dist` uses the project's .venv, which this is)
    r = subprocess.run([MAKE, "--no-print-directory", "-C", str(src), "dist", f"BIN={BIN}"],
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    sdist, wheel = src / "dist" / f"vecsched-{VERSION}.tar.gz", src / "dist" / f"vecsched-{VERSION}-py3-none-any.whl"
    assert sorted(p.name for p in (src / "dist").iterdir()) == sorted([sdist.name, wheel.name])

    with tarfile.open(sdist) as tar:
        names = set(tar.getnames())
    prefix = f"vecsched-{VERSION}/"
    assert {prefix + n for n in ("PKG-INFO", "pyproject.toml", "README.md", "LICENSE", "scheduler/cli.py",
                                 "scheduler/kubectl_plugin.py", "scoring/__init__.py",
                                 "benchmarks/openb.sha256")} <= names
    with zipfile.ZipFile(wheel) as whl:
        entry_points = whl.read(f"vecsched-{VERSION}.dist-info/entry_points.txt").decode()
        # The sums `make openb` checks the trace against travel with the code that reads them.
        assert whl.read("benchmarks/openb.sha256") == (ROOT / "benchmarks/openb.sha256").read_bytes()
    for script, target in PYPROJECT["project"]["scripts"].items():
        assert f"{script} = {target}" in entry_points

    # Into an empty venv, without dependencies: the scripts are the wheel's.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    r = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--quiet",
                        "--no-deps", "--no-index", str(wheel)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert sorted(p.name for p in (venv / "bin").iterdir() if p.name in PYPROJECT["project"]["scripts"]) == \
        sorted(PYPROJECT["project"]["scripts"])
    # The dependencies from the test venv's site-packages, the code from the wheel (run from
    # tmp_path: `python -c` puts the working directory first on sys.path).
    deps = {**os.environ, "PYTHONPATH": next(p for p in sys.path if p.endswith("site-packages"))}
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import scheduler; print(scheduler.__file__)"],
                           capture_output=True, text=True, env=deps, cwd=tmp_path, timeout=60)
    assert where.stdout.startswith(str(venv)), where.stdout + where.stderr
    for script, usage in [("vecsched", "usage: vecsched"), ("kubectl-vecsched", "usage: kubectl vecsched")]:
        r = subprocess.run([str(venv / "bin" / script), "--help"], capture_output=True, text=True, env=deps,
                           cwd=tmp_path, timeout=60)
        assert r.returncode == 0 and r.stdout.startswith(usage), r.stdout + r.stderr


def _release_edits() -> str:
    """The lines of README.md's release block that set the version: VERSION=, and the seds."""
    readme = (ROOT / "README.md").read_text()
    block = readme[readme.index("To release "):].split("```sh\n", 1)[1].split("```", 1)[0]
    lines: list[str] = []
    keep = False
    for line in block.splitlines():
        keep = line.startswith(("VERSION=", "sed -i")) or (keep and lines[-1].endswith("\\"))
        if keep:
            lines.append(line)
    return "\n".join(lines) + "\n"


def test_the_release_edits_set_every_tag_and_keep_the_rest(tmp_path: Path) -> None:
    edits = _release_edits()
    version = edits.split("VERSION=", 1)[1].split()[0]
    assert version != VERSION
    shutil.copy2(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(ROOT / "deploy", tmp_path / "deploy")
    r = subprocess.run(["bash", "-c", "set -euo pipefail\n" + edits], cwd=tmp_path, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    assert tomllib.loads((tmp_path / "pyproject.toml").read_text())["project"]["version"] == version
    for layer in LAYERS:
        before = (ROOT / layer / "kustomization.yaml").read_text().splitlines()
        after = (tmp_path / layer / "kustomization.yaml").read_text().splitlines()
        # one line changed, the tag; comments and order as they were
        assert [(a, b) for a, b in zip(before, after) if a != b] == [(f"  newTag: {VERSION}", f"  newTag: {version}")]
        built = subprocess.run([KUBECTL, "kustomize", str(tmp_path / layer)], capture_output=True, text=True,
                               timeout=60)
        assert built.returncode == 0, built.stderr
        assert f"image: {REPOSITORY}:{version}\n" in built.stdout
