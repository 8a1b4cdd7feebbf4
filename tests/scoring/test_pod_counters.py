"""The pod-level counters stay bounded in a long-running scheduler and stay right:
least recently used selector counters are dropped and rebuilt on demand, and an
affinity term is forgotten when the last pod carrying it leaves."""

from __future__ import annotations

from scoring.plugins import inter_pod_affinity as ipa
from scoring.plugins import pod_topology_spread as pts
from scoring.plugins.pod_counters import REQUIRED_ANTI_AFFINITY, PodCounters
from tests.scoring.pod_constraint_helpers import HOSTNAME, node, pod, run_filter, sc, table_of

NODES = [node(f"n{i}", {HOSTNAME: f"n{i}"}) for i in range(3)]


def _spread_pod(app: str) -> object:
    return pod(f"new-{app}", {"app": app},
               spread=[sc(1, HOSTNAME, "DoNotSchedule", {"matchLabels": {"app": app}})])


def test_evicted_counters_are_rebuilt_with_the_pods_placed_meanwhile() -> None:
    # Ten workloads, each with 2 pods on n0: spreading a third replica with maxSkew 1
    # rejects n0 (2 + 1 - 0 > 1) and accepts n1, n2.
    placed = [pod(f"{app}-{i}", {"app": app}, node_name="n0") for app in "abcdefghij" for i in range(2)]
    table = table_of(NODES, placed)
    counters = PodCounters.of(table)
    counters.counter_limit = 4
    plugin = pts.new({}, "args")
    for app in "abcdefghij":
        got, _ = run_filter(plugin, _spread_pod(app), table)
        assert got["n0"] != "" and got["n1"] == got["n2"] == "", app
        assert len(counters._counters) <= 4
    # "a" was evicted long ago; meanwhile one of its pods lands on n1: n0 2, n1 1, n2 0.
    table.add_pod(pod("a-late", {"app": "a"}, node_name="n1"), "n1")
    got, _ = run_filter(plugin, _spread_pod("a"), table)
    # min 0 (n2): n0 2+1 > 1 and n1 1+1 > 1 rejected, n2 fits
    assert got["n0"] != "" and got["n1"] != "" and got["n2"] == ""


def test_a_term_is_forgotten_when_its_last_pod_leaves() -> None:
    anti = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"topologyKey": HOSTNAME, "labelSelector": {"matchLabels": {"app": "web"}}}]}}
    table = table_of(NODES, [pod("db-0", {"app": "db"}, node_name="n0", affinity=anti)])
    counters = PodCounters.of(table)
    incoming = pod("web-0", {"app": "web"})
    # db-0 refuses web pods on its node
    assert run_filter(ipa.new({}, "args"), incoming, table)[0]["n0"] != ""
    assert len(list(counters.terms(REQUIRED_ANTI_AFFINITY))) == 1
    table.remove_pod("default/db-0")
    assert list(counters.terms(REQUIRED_ANTI_AFFINITY)) == []
    assert run_filter(ipa.new({}, "args"), incoming, table)[0]["n0"] == ""
    # the same term comes back with a new pod, on another node
    table.add_pod(pod("db-1", {"app": "db"}, node_name="n2", affinity=anti), "n2")
    got = run_filter(ipa.new({}, "args"), incoming, table)[0]
    assert got["n0"] == "" and got["n2"] != ""
