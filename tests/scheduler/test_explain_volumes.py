"""`vecsched explain` with storage objects, as a user runs it: the example of
docs/volumes.md prints what the page shows, and each of its volume reasons comes and
goes with the object that causes it.

The example (see the page): four nodes, node-b in zone-b and the others in zone-a;
db-0 has a data claim bound to a PV of zone-a and a new scratch claim of 10Gi of a
WaitForFirstConsumer class whose CSI driver publishes capacity (500Gi on node-a,
node-b and node-c, 5Gi on node-d); node-c's CSINode allows 2 volumes of the driver and
cache-0 holds one there.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.explain_support import explain_snapshot

DOC = Path(__file__).resolve().parents[2] / "docs" / "volumes.md"
AFFINITY = "node(s) had volume node affinity conflict"
LIMIT = "node(s) exceed max volume count"
SPACE = "node(s) did not have enough free storage"


def _example() -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    """The page's command block, snapshot items and pod."""
    doc = DOC.read_text()
    section = doc[doc.index("## Explaining a decision"):]
    blocks = section.split("```")[1::2]
    snapshot, pod = (yaml.safe_load(b.removeprefix("yaml\n")) for b in blocks if b.startswith("yaml\n"))
    shown = next(b for b in blocks if b.startswith("\n$ vecsched explain --snapshot snapshot.yaml --pod db-0.yaml"))
    return shown, snapshot["items"], pod


def test_the_documented_example(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shown, items, pod = _example()
    code, out, err = explain_snapshot(tmp_path, capsys, items, pod)
    assert (code, err) == (0, "")
    assert out.splitlines() == shown.strip("\n").splitlines()[1:]


def _item(items: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(i for i in items if i["kind"] == kind and i["metadata"]["name"] == name)


def _limit(n: int) -> Callable[[list[dict[str, Any]]], None]:
    def edit(items: list[dict[str, Any]]) -> None:
        _item(items, "CSINode", "node-c")["spec"]["drivers"][0]["allocatable"]["count"] = n
    return edit


def _capacity(q: str) -> Callable[[list[dict[str, Any]]], None]:
    def edit(items: list[dict[str, Any]]) -> None:
        _item(items, "CSIStorageCapacity", "cap-d")["capacity"] = q
    return edit


def _drop(kind: str, name: str) -> Callable[[list[dict[str, Any]]], None]:
    def edit(items: list[dict[str, Any]]) -> None:
        items.remove(_item(items, kind, name))
    return edit


def _pv_zone(zone: str) -> Callable[[list[dict[str, Any]]], None]:
    def edit(items: list[dict[str, Any]]) -> None:
        pv = _item(items, "PersistentVolume", "pvc-1111")
        pv["metadata"]["labels"]["topology.kubernetes.io/zone"] = zone
        pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] = [zone]
    return edit


@pytest.mark.parametrize(("edit", "selected", "reasons", "message"), [
    pytest.param(lambda items: None, "node-a", {"node-b": [AFFINITY], "node-c": [LIMIT], "node-d": [SPACE]}, "",
                 id="as-documented"),
    # node-c: cache-0's volume + db-0's two = 3 <= 3; it fits, and scores as node-a does but for
    # NodeResourcesFit and balance, which see cache-0's 1 cpu and 1Gi: node-a stays first.
    pytest.param(_limit(3), "node-a", {"node-b": [AFFINITY], "node-d": [SPACE]}, "", id="attach-limit-3"),
    # 3 > 2 still, with the limit one higher than the example's volumes minus one
    pytest.param(_limit(2), "node-a", {"node-b": [AFFINITY], "node-c": [LIMIT], "node-d": [SPACE]}, "",
                 id="attach-limit-2"),
    # 10Gi fits in 10Gi: node-d passes
    pytest.param(_capacity("10Gi"), "node-a", {"node-b": [AFFINITY], "node-c": [LIMIT]}, "", id="capacity-10Gi"),
    # The data volume in zone-b: only node-b is admitted by its node affinity, and it fits there. node-c is
    # rejected first by NodeVolumeLimits (it runs before VolumeBinding, and a node keeps its first reason);
    # VolumeBinding gives node-d both of its reasons, as upstream's FindPodVolumes does.
    pytest.param(_pv_zone("zone-b"), "node-b", {"node-a": [AFFINITY], "node-c": [LIMIT], "node-d": [AFFINITY, SPACE]},
                 "", id="volume-in-zone-b"),
    # A zone no node is in: no node admits the volume. Counted per reason: node-d's two reasons both count;
    # preemption cannot help with VolumeBinding's (unresolvable) reasons, and finds no victim on node-c
    # (cache-0 has db-0's priority, 0).
    pytest.param(_pv_zone("zone-x"), None,
                 {"node-a": [AFFINITY], "node-b": [AFFINITY], "node-c": [LIMIT], "node-d": [AFFINITY, SPACE]},
                 f"0/4 nodes are available: 1 {SPACE}, 1 {LIMIT}, 3 {AFFINITY}. preemption: 0/4 nodes are "
                 f"available: 1 No preemption victims found for incoming pod, 3 Preemption is not helpful for "
                 f"scheduling.", id="volume-in-no-zone"),
    # VolumeBinding's PreFilter rejects the pod on every node with the API's not-found message.
    pytest.param(_drop("PersistentVolumeClaim", "scratch-db-0"), None,
                 {n: ['persistentvolumeclaim "scratch-db-0" not found']
                  for n in ("node-a", "node-b", "node-c", "node-d")},
                 '0/4 nodes are available: persistentvolumeclaim "scratch-db-0" not found. preemption: 0/4 nodes '
                 'are available: 4 Preemption is not helpful for scheduling.', id="claim-missing"),
])
def test_each_volume_reason_follows_its_cause(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              edit: Callable[[list[dict[str, Any]]], None], selected: str | None,
                                              reasons: dict[str, list[str]], message: str) -> None:
    _, items, pod = _example()
    items = copy.deepcopy(items)
    edit(items)
    code, out, err = explain_snapshot(tmp_path, capsys, items, pod, "-o", "json")
    assert (code, err) == (0, "")
    doc = json.loads(out)
    assert (doc["selected"], doc["message"]) == (selected, message)
    assert {n: v["reasons"] for n, v in doc["nodes"].items() if v["reasons"]} == reasons
