"""NodePorts: cases ported from upstream's node_ports_test.go (TestNodePorts), plus
sidecar host ports (upstream's GetHostPorts) and a pod's own duplicate ports."""

from typing import Any

import pytest

from scoring.objects import HostPort, node_from_json, pod_from_json
from scoring.plugins import node_ports
from scoring.plugins.node_ports import ERR_REASON
from scoring.table import NodeTable
from tests.explain_support import explain_reasons


def _ports(*infos: str) -> list[dict[str, Any]]:
    """``"UDP/127.0.0.1/8080"`` -> a container port, as upstream's newPod helper."""
    out = []
    for info in infos:
        proto, ip, port = info.split("/")
        out.append({"containerPort": int(port), "hostPort": int(port), "hostIP": ip, "protocol": proto})
    return out


def _pod(name: str, *infos: str, sidecar: tuple[str, ...] = ()) -> Any:
    spec: dict[str, Any] = {"containers": [{"name": "c", "ports": _ports(*infos)}]}
    if sidecar:
        spec["initContainers"] = [{"name": "s", "restartPolicy": "Always", "ports": _ports(*sidecar)},
                                  {"name": "once", "ports": _ports("TCP/0.0.0.0/9999")}]
    return pod_from_json({"metadata": {"name": name, "namespace": "ns"}, "spec": spec})


def _verdict(pod: Any, *existing: Any) -> list[str]:
    t = NodeTable()
    t.set_node(node_from_json({"metadata": {"name": "m1"}}))
    for p in existing:
        t.add_pod(p, "m1")
    reasons = node_ports.new({}, "args").filter(pod, t, {}) or []
    assert not any(r.unresolvable for r in reasons)  # Unschedulable: preemption can free a port
    got = [r.message for r in reasons if r.nodes[0]]
    assert explain_reasons(nodes=t.infos, pod=pod, existing=[(p, "m1") for p in existing],
                           plugin=node_ports.NAME) == {"m1": got}
    return got


CASES = [
    ("skip filter", _pod("p"), [], []),
    ("other port", _pod("p", "UDP/127.0.0.1/8080"), [_pod("e", "UDP/127.0.0.1/9090")], []),
    ("same udp port", _pod("p", "UDP/127.0.0.1/8080"), [_pod("e", "UDP/127.0.0.1/8080")], [ERR_REASON]),
    ("same tcp port", _pod("p", "TCP/127.0.0.1/8080"), [_pod("e", "TCP/127.0.0.1/8080")], [ERR_REASON]),
    ("different host ip", _pod("p", "TCP/127.0.0.1/8080"), [_pod("e", "TCP/127.0.0.2/8080")], []),
    ("different protocol", _pod("p", "UDP/127.0.0.1/8080"), [_pod("e", "TCP/127.0.0.1/8080")], []),
    ("second udp port conflict", _pod("p", "UDP/127.0.0.1/8000", "UDP/127.0.0.1/8080"),
     [_pod("e", "UDP/127.0.0.1/8080")], [ERR_REASON]),
    ("first tcp port conflict", _pod("p", "TCP/127.0.0.1/8001", "UDP/127.0.0.1/8080"),
     [_pod("e", "TCP/127.0.0.1/8001", "UDP/127.0.0.1/8081")], [ERR_REASON]),
    # a wanted wildcard conflicts with the port on any IP
    ("first tcp port conflict due to 0.0.0.0 hostIP", _pod("p", "TCP/0.0.0.0/8001"),
     [_pod("e", "TCP/127.0.0.1/8001")], [ERR_REASON]),
    ("TCP hostPort conflict due to 0.0.0.0 hostIP", _pod("p", "TCP/10.0.10.10/8001", "TCP/0.0.0.0/8001"),
     [_pod("e", "TCP/127.0.0.1/8001")], [ERR_REASON]),
    # a used wildcard conflicts with the port wanted on any IP
    ("second tcp port conflict to 0.0.0.0 hostIP", _pod("p", "TCP/127.0.0.1/8001"),
     [_pod("e", "TCP/0.0.0.0/8001")], [ERR_REASON]),
    ("second different protocol", _pod("p", "UDP/127.0.0.1/8001"), [_pod("e", "TCP/0.0.0.0/8001")], []),
    ("UDP hostPort conflict due to 0.0.0.0 hostIP", _pod("p", "UDP/127.0.0.1/8001"),
     [_pod("e", "TCP/0.0.0.0/8001", "UDP/0.0.0.0/8001")], [ERR_REASON]),
]


@pytest.mark.parametrize(("pod", "existing", "want"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_node_ports(pod: Any, existing: list[Any], want: list[str]) -> None:
    assert _verdict(pod, *existing) == want


def test_sidecar_ports_count_on_both_sides_and_plain_init_containers_do_not() -> None:
    # the existing pod's sidecar holds 7000; its run-once init container's 9999 is free again
    existing = _pod("e", "TCP/0.0.0.0/80", sidecar=("TCP/0.0.0.0/7000",))
    assert existing.host_ports == (HostPort("0.0.0.0", "TCP", 7000), HostPort("0.0.0.0", "TCP", 80))
    assert _verdict(_pod("p", "TCP/0.0.0.0/7000"), existing) == [ERR_REASON]
    assert _verdict(_pod("p", "TCP/0.0.0.0/9999"), existing) == []
    # the pending pod's sidecar ports are wanted too
    assert _verdict(_pod("p", sidecar=("TCP/127.0.0.1/80",)), existing) == [ERR_REASON]


def test_defaults_and_a_pods_own_duplicates() -> None:
    # hostIP "" is 0.0.0.0 and protocol "" is TCP, as HostPortInfo.sanitize
    p = pod_from_json({"metadata": {"name": "p"}, "spec": {"containers": [
        {"name": "a", "ports": [{"containerPort": 1, "hostPort": 8080}]},
        {"name": "b", "ports": [{"containerPort": 2, "hostPort": 8080}]}]}})
    assert p.host_ports == (HostPort("0.0.0.0", "TCP", 8080),) * 2
    # the pod's own two 8080s are not checked against each other (upstream leaves that to the API server)
    assert _verdict(p) == []
    assert _verdict(p, _pod("e", "TCP/10.0.0.1/8080")) == [ERR_REASON]
