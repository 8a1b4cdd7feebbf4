"""Running ``kubectl vecsched`` as users do: the real kubectl, which finds the plugin on PATH."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

__all__ = ["BIN", "KUBECTL", "kubectl_vecsched", "cells", "down_kubeconfig"]

BIN = Path(sys.executable).parent
KUBECTL = str(BIN / "kubectl")


async def kubectl_vecsched(*args: str, home: Path, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """``kubectl vecsched ARGS``: the real kubectl, with the venv's bin (and so the plugin) on PATH;
    (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        KUBECTL, "vecsched", *args, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**{k: v for k, v in os.environ.items() if k != "KUBECONFIG"}, "HOME": str(home),
             "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **(env or {})})
    out, err = await asyncio.wait_for(proc.communicate(), 30.0)
    return proc.returncode or 0, out.decode(), err.decode()


def cells(line: str) -> list[str]:
    """A table row's cells (kubectl pads columns with at least two spaces)."""
    return re.split(r" {2,}", line.rstrip())


def down_kubeconfig(tmp_path: Path) -> Path:
    """A kubeconfig whose server answers nothing (port 1 on loopback)."""
    path = tmp_path / "down"
    path.write_text("apiVersion: v1\nkind: Config\ncurrent-context: c\n"
                    "clusters: [{name: c, cluster: {server: 'http://127.0.0.1:1'}}]\n"
                    "users: [{name: u, user: {}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\n")
    return path
