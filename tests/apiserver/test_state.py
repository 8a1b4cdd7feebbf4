"""State saved on stop is loaded on the next start: objects and resourceVersions survive."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from scheduler.apiserver import serve_apiserver

from .kube import pod_manifest


async def test_objects_survive_restart(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    async with serve_apiserver(nodes=2, state_path=state) as srv:
        srv.create("namespaces", {"metadata": {"name": "team"}})
        uid = srv.create("pods", pod_manifest("web-1"), namespace="team")["metadata"]["uid"]
        rv = srv.store.resource_version
    assert json.loads(state.read_text())["resourceVersion"] == rv
    async with serve_apiserver(nodes=2, state_path=state) as srv:
        assert srv.get("pods", "web-1", namespace="team")["metadata"]["uid"] == uid
        assert sorted(n["metadata"]["name"] for n in srv.list("nodes")) == ["node-0000", "node-0001"]
        assert srv.store.resource_version == rv
        new = srv.create("pods", pod_manifest("web-2"), namespace="team")
        assert int(new["metadata"]["resourceVersion"]) > rv


async def test_bound_pending_pods_start_after_restart(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    async with serve_apiserver(nodes=1, state_path=state) as srv:
        srv.set_node_ready("node-0000", False)
        srv.create("pods", pod_manifest("web-1", node="node-0000"), namespace="default")
    async with serve_apiserver(state_path=state, kubelet_delay=0) as srv:
        srv.set_node_ready("node-0000", True)
        await asyncio.sleep(0.05)
        assert srv.get("pods", "web-1", namespace="default")["status"]["phase"] == "Running"


async def test_corrupt_state_is_a_clear_error(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_text("{not json")
    with pytest.raises(ValueError, match="not JSON"):
        async with serve_apiserver(state_path=state):
            pass
