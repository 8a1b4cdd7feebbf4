"""KubeSchedulerConfiguration profiles: upstream's merge of multiPoint with the
defaults, strict errors naming the path, warnings for fields we do not use."""

from typing import Any

import pytest
import yaml

from scheduler.config import API_VERSION, ConfigError, default_config, load_config, parse_config
from scoring.plugins import REGISTRY


def _cfg(**top: Any) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": "KubeSchedulerConfiguration", **top}


def _implemented(names: list[str]) -> list[str]:
    return [n for n in names if n in REGISTRY]


def test_default_profile_is_upstreams_defaults_we_implement() -> None:
    p = default_config().profiles[0]
    assert p.scheduler_name == "vecsched"
    # upstream's multiPoint order, filtered to what is registered
    assert list(p.filters) == _implemented(["NodeUnschedulable", "NodeName", "TaintToleration", "NodeAffinity",
                                            "NodePorts", "NodeResourcesFit", "PodTopologySpread", "InterPodAffinity"])
    weights = {"TaintToleration": 3, "NodeAffinity": 2, "NodeResourcesFit": 1, "PodTopologySpread": 2,
               "InterPodAffinity": 2, "NodeResourcesBalancedAllocation": 1, "ImageLocality": 1}
    assert list(p.scores) == [(n, w) for n, w in weights.items() if n in REGISTRY]
    assert p.percentage_of_nodes_to_score is None  # vecsched scores every node by default


def test_multipoint_disable_and_star() -> None:
    cfg = parse_config(_cfg(profiles=[{
        "schedulerName": "packer",
        "plugins": {"multiPoint": {"disabled": [{"name": "NodeName"}]}, "score": {"disabled": [{"name": "*"}]}},
    }]))
    p = cfg.profiles[0]
    assert "NodeName" not in p.filters and "NodeUnschedulable" in p.filters
    assert p.scores == ()  # "*" disabled every score plugin


def test_specific_point_override_comes_first() -> None:
    # upstream's expandMultiPointPlugins: plugins the specific point re-enables come first,
    # then the multiPoint ones, then the specific point's others
    cfg = parse_config(_cfg(profiles=[{"plugins": {"filter": {"enabled": [{"name": "NodeName"}]}}}]))
    filters = cfg.profiles[0].filters
    assert filters[0] == "NodeName"
    assert filters.count("NodeName") == 1
    assert "NodeUnschedulable" in filters


def test_specific_point_only_with_star() -> None:
    cfg = parse_config(_cfg(profiles=[{"plugins": {"filter": {"disabled": [{"name": "*"}],
                                                              "enabled": [{"name": "NodeName"}]}}}]))
    assert cfg.profiles[0].filters == ("NodeName",)


@pytest.mark.parametrize(
    ("doc", "path", "problem"),
    [
        (_cfg(profiles=[{"schedulerName": "a", "plugin": {}}]), "profiles[0].plugin", "unknown field"),
        (_cfg(profiles=[{"plugins": {"multiPoint": {"enabled": [{"name": "Foo"}]}}}]),
         "profiles[0].plugins.multiPoint.enabled[0].name", "unknown plugin 'Foo' (known: "),
        (_cfg(profiles=[{"plugins": {"score": {"enabled": [{"name": "NodeName", "weight": 0}]}}}]),
         "profiles[0].plugins.score.enabled[0].weight", "must be > 0"),
        (_cfg(profiles=[{"plugins": {"score": {"enabled": [{"name": "NodeName", "weight": -2}]}}}]),
         "profiles[0].plugins.score.enabled[0].weight", "must be > 0"),
        (_cfg(profiles=[{"schedulerName": "a"}, {"schedulerName": "a"}]), "profiles[1].schedulerName",
         "duplicate profile 'a'"),
        (_cfg(profiles=[{"pluginConfig": [{"name": "NodeName", "args": {}}, {"name": "NodeName", "args": {}}]}]),
         "profiles[0].pluginConfig[1].name", "repeated config"),
        (_cfg(profiles=[{"pluginConfig": [{"name": "NodeName", "args": {"kind": "OtherArgs"}}]}]),
         "profiles[0].pluginConfig[0].args.kind", "expected NodeNameArgs"),
        (_cfg(profiles=[{"pluginConfig": [{"name": "NodeName", "args": {"surprise": 1}}]}]),
         "profiles[0].pluginConfig[0].args.surprise", "unknown field"),
        (_cfg(percentageOfNodesToScore=101), "percentageOfNodesToScore", "must be <= 100"),
        (_cfg(podInitialBackoffSeconds=5, podMaxBackoffSeconds=2), "podMaxBackoffSeconds", "must be >="),
        (_cfg(leaderElection={"leaseDuration": "soon"}), "leaderElection.leaseDuration", "expected a duration"),
        ({"apiVersion": "kubescheduler.config.k8s.io/v1beta3", "kind": "KubeSchedulerConfiguration"},
         "apiVersion", "expected kubescheduler.config.k8s.io/v1"),
        (_cfg(profiles="vecsched"), "profiles", "expected a list"),
        (_cfg(profiles=[{"schedulerName": "a"}, {}]), "profiles[1].schedulerName", "required when there is more"),
    ],
)
def test_invalid_config_names_the_path(doc: dict[str, Any], path: str, problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(doc, source="sched.yaml")
    assert err.value.path == f"sched.yaml: {path}"
    assert problem in err.value.problem


def test_unused_fields_warn() -> None:
    cfg = parse_config(_cfg(parallelism=16, clientConnection={"qps": 50}))
    assert "parallelism: accepted but not used by vecsched" in cfg.warnings
    assert "clientConnection: accepted but not used by vecsched" in cfg.warnings


def test_unimplemented_upstream_plugin_warns_when_enabled_explicitly() -> None:
    cfg = parse_config(_cfg(profiles=[{"plugins": {"multiPoint": {"enabled": [{"name": "VolumeBinding"}]}}}]))
    assert any("VolumeBinding is not implemented by vecsched" in w for w in cfg.warnings)


def test_leader_election_and_backoff() -> None:
    cfg = parse_config(_cfg(podInitialBackoffSeconds=2, podMaxBackoffSeconds=20,
                            leaderElection={"leaderElect": True, "leaseDuration": "1m30s", "renewDeadline": "500ms"}))
    assert (cfg.pod_initial_backoff_seconds, cfg.pod_max_backoff_seconds) == (2.0, 20.0)
    assert cfg.leader_election.lease_duration_seconds == 90.0
    assert cfg.leader_election.renew_deadline_seconds == 0.5
    assert cfg.leader_election.retry_period_seconds == 2.0  # upstream default


def test_load_yaml_and_json_files(tmp_path: Any) -> None:
    doc = _cfg(profiles=[{"schedulerName": "a"}, {"schedulerName": "b", "percentageOfNodesToScore": 30}])
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(doc))
    (tmp_path / "c.json").write_text(__import__("json").dumps(doc))
    for f in ("c.yaml", "c.json"):
        cfg = load_config(tmp_path / f)
        assert [p.scheduler_name for p in cfg.profiles] == ["a", "b"]
        assert cfg.profiles[1].percentage_of_nodes_to_score == 30
        assert set(cfg.build()) == {"a", "b"}


@pytest.mark.parametrize(("content", "problem"), [("a: [", "not valid YAML"), (None, "cannot read")])
def test_unreadable_files(tmp_path: Any, content: str | None, problem: str) -> None:
    path = tmp_path / "bad.yaml"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=problem):
        load_config(path)
