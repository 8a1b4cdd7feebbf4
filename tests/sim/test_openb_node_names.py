"""``openb:`` clusters are named per seed as the FGD authors' simulator names them: a random
``NNNN-`` prefix before each node's name, which is what the ``NodeName`` tie-break sees."""

from __future__ import annotations

from pathlib import Path

import pytest
from sim_helpers import write

from benchmarks.openb import load_openb_nodes, simulator_node_names
from benchmarks.sim.loaders import cluster_for_seed, load_cluster
from benchmarks.sim.replay import Event, replay
from benchmarks.sim.sweep import SweepOptions, run_one, seed_pods
from benchmarks.strategies import resolve_strategies
from scoring.objects import NodeInfo, node_from_json

# Three identical GPU nodes listed out of name order; a CPU-only pod leaves every node's
# fragmentation as it was (no typical pod needs the CPU it takes), so FGD scores all three 50
# and the NodeName tie-break alone decides.
NODES = ("sn,cpu_milli,memory_mib,gpu,model\n"
         "c,32000,65536,2,P100\na,32000,65536,2,P100\nb,32000,65536,2,P100\n")
PODS = "name,cpu_milli,memory_mib,num_gpu,gpu_milli\ncpu-only,1000,1024,0,0\nshare,1000,1024,1,500\n"


def _nodes_csv(tmp_path: Path) -> str:
    return write(tmp_path / "nodes.csv", NODES)


@pytest.mark.parametrize("seed", [0, 1, 7], ids=["seed0", "seed1", "seed7"])
def test_prefixes_are_a_permutation_in_the_name_order(tmp_path: Path, seed: int) -> None:
    nodes = load_openb_nodes(_nodes_csv(tmp_path))
    named = simulator_node_names(nodes, seed)
    # The list keeps its order (c, a, b) and every node keeps its labels; each name is
    # "NNNN-" + the old name, and the three numbers are 0, 1 and 2 in some order.
    assert [n.name[5:] for n in named] == ["c", "a", "b"]
    assert [n.labels for n in named] == [n.labels for n in nodes]
    assert [n.allocatable for n in named] == [n.allocatable for n in nodes]
    assert sorted(int(n.name[:4]) for n in named) == [0, 1, 2]
    assert all(n.name[4] == "-" for n in named)
    # The same seed draws the same names.
    assert [n.name for n in simulator_node_names(nodes, seed)] == [n.name for n in named]


def test_seeds_draw_different_orders(tmp_path: Path) -> None:
    # 10 nodes have 10! = 3,628,800 orders: seeds 0..4 drawing one order between them would
    # mean the seed is not used.
    csv = "sn,cpu_milli,memory_mib,gpu,model\n" + "".join(f"n{i},8000,1024,1,T4\n" for i in range(10))
    nodes = load_openb_nodes(write(tmp_path / "n.csv", csv))
    orders = {tuple(n.name for n in simulator_node_names(nodes, s)) for s in range(5)}
    assert len(orders) == 5


def _plain_nodes(count: int) -> list[NodeInfo]:
    return [node_from_json({"metadata": {"name": f"n{i:05d}"}, "status": {"allocatable": {"cpu": "1"}}})
            for i in range(count)]


@pytest.mark.parametrize(("count", "width"), [(3, 4), (10_000, 4), (10_001, 5)],
                         ids=["few", "10000-still-4-digits", "10001-needs-5"])
def test_prefix_width_keeps_names_in_drawn_order(count: int, width: int) -> None:
    # Numbers run 0..count-1: 9,999 fits 4 digits, 10,000 needs 5, and every prefix has the
    # same width, so sorting the names sorts by the drawn number.
    named = simulator_node_names(_plain_nodes(count), 3)
    assert {len(n.name.split("-", 1)[0]) for n in named} == {width}
    by_name = sorted(named, key=lambda n: n.name)
    assert [int(n.name.split("-", 1)[0]) for n in by_name] == list(range(count))


@pytest.mark.parametrize("kind", ["openb", "shapes"], ids=["openb-renamed", "yaml-as-is"])
def test_cluster_for_seed(tmp_path: Path, kind: str) -> None:
    spec = f"openb:{_nodes_csv(tmp_path)}" if kind == "openb" else \
        write(tmp_path / "c.yaml", "- {count: 2, name: w, cpu: 4, memory: 8Gi}\n")
    nodes = load_cluster(spec)
    names = [n.name for n in cluster_for_seed(spec, nodes, 5)]
    if kind == "openb":
        assert names == [n.name for n in simulator_node_names(nodes, 5)]
    else:
        assert names == [n.name for n in nodes]


@pytest.mark.parametrize("seed", [0, 1, 2, 3], ids=["seed0", "seed1", "seed2", "seed3"])
def test_a_run_breaks_ties_by_the_drawn_prefix(tmp_path: Path, seed: int) -> None:
    # FGD with the NodeName tie-break: the CPU-only pod scores 50 on all three nodes (no typical
    # pod of this workload needs more than the 31 CPUs it leaves), so it goes to the node whose
    # drawn number is 0 -- by the original names it would always be "a".
    cluster = f"openb:{_nodes_csv(tmp_path)}"
    workload = f"openb:{write(tmp_path / 'pods.csv', PODS)}"
    opts = SweepOptions(cluster=cluster, workload=workload, shuffle=False)
    nodes, pods = seed_pods(opts, seed)
    first = min(nodes, key=lambda n: n.name)
    assert first.name.startswith("0000-")
    profile = resolve_strategies(["FGD"], workload=[p.pod for p in pods])["FGD"].build(seed=seed)
    events: list[Event] = []
    replay(nodes=nodes, pods=pods[:1], profile=profile, events=events)
    assert events == [(0.0, "place", "openb/cpu-only", first.name)]
    # The sweep's own run places both pods on the same cluster.
    assert run_one(opts, "FGD", resolve_strategies(["FGD"], workload=[p.pod for p in pods])["FGD"],
                   seed)["placed"] == 2
