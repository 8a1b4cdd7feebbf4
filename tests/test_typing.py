"""The runtime and the core type-check under `mypy --strict` (the project's habit: keyword-only,
fully typed signatures; each plugin module proves it fits its extension-point protocols)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_mypy_strict_is_clean() -> None:
    proc = subprocess.run([sys.executable, "-m", "mypy", "--strict", "scoring", "scheduler"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
