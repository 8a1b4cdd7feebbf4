"""KubeSchedulerConfiguration profiles: upstream's merge of multiPoint with the
defaults, strict errors naming the path, warnings for fields we do not use."""

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from scheduler.config import _INSTEAD, API_VERSION, ConfigError, default_config, load_config, parse_config
from scoring.plugins import REGISTRY


def _cfg(**top: Any) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": "KubeSchedulerConfiguration", **top}


def test_default_profile_is_upstreams_defaults() -> None:
    p = default_config().profiles[0]
    assert p.scheduler_name == "vecsched"
    # upstream's multiPoint order (pkg/scheduler/apis/config/v1/default_plugins.go); every default filter and
    # score plugin is implemented, the volume plugins included
    assert list(p.filters) == ["NodeUnschedulable", "NodeName", "TaintToleration", "NodeAffinity", "NodePorts",
                               "NodeResourcesFit", "VolumeRestrictions", "NodeVolumeLimits", "VolumeBinding",
                               "VolumeZone", "PodTopologySpread", "InterPodAffinity"]
    assert list(p.prefilters) == ["NodeAffinity", "VolumeRestrictions", "VolumeBinding", "VolumeZone",
                                  "PodTopologySpread", "InterPodAffinity", "Coscheduling"]
    # VolumeBinding scores with weight 1 (StorageCapacityScoring on, as upstream's feature gate by default)
    assert list(p.scores) == [("TaintToleration", 3), ("NodeAffinity", 2), ("NodeResourcesFit", 1),
                              ("VolumeBinding", 1), ("PodTopologySpread", 2), ("InterPodAffinity", 2),
                              ("NodeResourcesBalancedAllocation", 1), ("ImageLocality", 1)]
    assert all(n in REGISTRY for n in p.filters)
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


@pytest.mark.parametrize(("plugin", "warns"), [
    ("DynamicResources", True),  # not implemented: accepted with a warning
    ("EBSLimits", True),  # removed upstream (NodeVolumeLimits counts in-tree volumes through CSI migration)
    ("VolumeBinding", False),
    ("VolumeZone", False),
    ("NodeVolumeLimits", False),
    ("VolumeRestrictions", False),
])
def test_unimplemented_upstream_plugin_warns_when_enabled_explicitly(plugin: str, warns: bool) -> None:
    cfg = parse_config(_cfg(profiles=[{"plugins": {"multiPoint": {"enabled": [{"name": plugin}]}}}]))
    assert any(f"{plugin} is not implemented by vecsched" in w for w in cfg.warnings) == warns, cfg.warnings


@pytest.mark.parametrize("plugin", ["VolumeRestrictions", "NodeVolumeLimits", "VolumeBinding", "VolumeZone"])
def test_volume_plugins_load_at_the_filter_point_without_warning(plugin: str) -> None:
    # A profile that names them at `filter` only (upstream profiles written before multiPoint do).
    cfg = parse_config(_cfg(profiles=[{"plugins": {"filter": {"disabled": [{"name": "*"}],
                                                              "enabled": [{"name": plugin}]}}}]))
    assert (cfg.profiles[0].filters, cfg.warnings) == ((plugin,), ())


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


# ---- gang scheduling: Coscheduling's extension points and the queue sort ----------------------

# scheduler-plugins' manifests/coscheduling/scheduler-config.yaml, as published.
COSCHEDULING_SAMPLE = """\
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
leaderElection:
  leaderElect: false
clientConnection:
  kubeconfig: "REPLACE_ME_WITH_KUBE_CONFIG_PATH"
profiles:
- schedulerName: default-scheduler
  plugins:
    multiPoint:
      enabled:
      - name: Coscheduling
    queueSort:
      enabled:
      - name: Coscheduling
      disabled:
      - name: "*"
  pluginConfig:
  - name: Coscheduling
    args:
      permitWaitingTimeSeconds: 10
"""
_COSCHEDULING_QUEUE_SORT = {"queueSort": {"enabled": [{"name": "Coscheduling"}], "disabled": [{"name": "*"}]}}


def test_default_profile_enables_coscheduling_but_keeps_priority_sort() -> None:
    p = default_config().profiles[0]
    # vecsched's default addition, after upstream's defaults at each point it implements.
    assert p.prefilters[-1] == "Coscheduling" and p.postfilters == ("DefaultPreemption", "Coscheduling")
    # upstream's VolumeBinding reserves too, before it (upstream's order, then vecsched's addition)
    assert (p.permits, p.reserves) == (("Coscheduling",), ("VolumeBinding", "Coscheduling"))
    assert p.queue_sort == "PrioritySort"
    built = p.build()
    assert built.queue_sort is None  # the queue's own PrioritySort
    assert [x.name for x in built.permits] == ["Coscheduling"]
    assert [x.name for x in built.unreservers] == ["VolumeBinding", "Coscheduling"]


def test_scheduler_plugins_sample_config(tmp_path: Any) -> None:
    from scoring.plugins.coscheduling import CoschedulingArgs

    path = tmp_path / "scheduler-config.yaml"
    path.write_text(COSCHEDULING_SAMPLE)
    cfg = load_config(path)
    p = cfg.profiles[0]
    assert (p.scheduler_name, p.queue_sort) == ("default-scheduler", "Coscheduling")
    # Enabled by multiPoint and by vecsched's defaults alike: once at each point.
    assert p.prefilters.count("Coscheduling") == 1 and p.postfilters.count("Coscheduling") == 1
    assert (p.permits, p.reserves) == (("Coscheduling",), ("VolumeBinding", "Coscheduling"))
    assert p.plugin_args == {"Coscheduling": {"permitWaitingTimeSeconds": 10}}
    assert cfg.leader_election.leader_elect is False
    assert "clientConnection: accepted but not used by vecsched" in cfg.warnings
    built = p.build()
    assert built.queue_sort is not None and built.queue_sort.name == "Coscheduling"
    # The queue sort is the same instance as the other points', with the file's args
    # (permitWaitingTimeSeconds 10; the others at their defaults 0 and 10).
    assert built.queue_sort is built.permits[0]
    assert getattr(built.queue_sort, "args") == CoschedulingArgs(10, 0, 10)


@pytest.mark.parametrize(
    ("plugins", "got"),
    [
        # Coscheduling added beside the default PrioritySort (upstream's framework refuses
        # this too: "only one queue sort plugin required ..., but got 2").
        ({"queueSort": {"enabled": [{"name": "Coscheduling"}]}}, "PrioritySort, Coscheduling"),
        # multiPoint brings Coscheduling's QueueSort in with the default PrioritySort.
        ({"multiPoint": {"enabled": [{"name": "Coscheduling"}]}}, "PrioritySort, Coscheduling"),
        # Both listed after "*".
        ({"queueSort": {"disabled": [{"name": "*"}], "enabled": [{"name": "Coscheduling"}, {"name": "PrioritySort"}]}},
         "Coscheduling, PrioritySort"),
    ],
)
def test_two_queue_sorts_are_an_error(plugins: dict[str, Any], got: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(_cfg(profiles=[{"plugins": plugins}]), source="sched.yaml")
    assert err.value.path == "sched.yaml: profiles[0].plugins.queueSort"
    assert err.value.problem == f"only one queue sort plugin can be enabled, got {got}"


def test_profiles_with_different_queue_sorts_are_an_error() -> None:
    import re

    doc = _cfg(profiles=[{"schedulerName": "a"}, {"schedulerName": "b", "plugins": _COSCHEDULING_QUEUE_SORT}])
    with pytest.raises(ConfigError) as err:
        parse_config(doc, source="sched.yaml")
    assert err.value.path == "sched.yaml: profiles[1].plugins.queueSort"
    # upstream's profile validator: different queue sort plugins for profile %q: %q, first: %q
    assert re.fullmatch(r"""different queue sort plugins for profile (["'])b\1: (["'])Coscheduling\2, """
                        r"""first: (["'])PrioritySort\3""", err.value.problem), err.value.problem
    # The same queue sort in every profile is fine.
    cfg = parse_config(_cfg(profiles=[{"schedulerName": "a", "plugins": _COSCHEDULING_QUEUE_SORT},
                                      {"schedulerName": "b", "plugins": _COSCHEDULING_QUEUE_SORT}]))
    assert [p.queue_sort for p in cfg.profiles] == ["Coscheduling", "Coscheduling"]


def test_multipoint_disable_removes_coscheduling_everywhere() -> None:
    cfg = parse_config(_cfg(profiles=[{"plugins": {"multiPoint": {"disabled": [{"name": "Coscheduling"}]}}}]))
    p = cfg.profiles[0]
    assert "Coscheduling" not in p.prefilters + p.filters + p.postfilters + p.permits + p.reserves
    assert p.queue_sort == "PrioritySort"
    built = p.build()
    assert "Coscheduling" not in built.plugin_names
    assert (built.permits, [x.name for x in built.unreservers], built.queue_sort) == ([], ["VolumeBinding"], None)


# ---- unimplemented upstream plugins wherever listed; a ConfigMap as --config ---------------------


@pytest.mark.parametrize(("point", "plugin", "instead"), [
    ("filter", "EBSLimits", "NodeVolumeLimits counts these volumes through their CSI drivers"),
    ("filter", "DynamicResources", "ResourceClaims are not allocated"),
    ("preFilter", "DynamicResources", "ResourceClaims are not allocated"),
    ("reserve", "DynamicResources", "ResourceClaims are not allocated"),
    ("filter", "NodeDeclaredFeatures", "node feature declarations are not checked"),
])
def test_unimplemented_plugins_warn_at_every_point(point: str, plugin: str, instead: str) -> None:
    # An upstream profile that lists them at a specific point loads, as one listing them at multiPoint does.
    cfg = parse_config(_cfg(profiles=[{"plugins": {point: {"enabled": [{"name": plugin}]}}}]))
    assert [w for w in cfg.warnings if plugin in w] == [
        f"profiles[0].plugins: {plugin} is not implemented by vecsched and is ignored ({_instead(plugin)})"]
    assert instead in cfg.warnings[0]
    p = cfg.profiles[0]
    assert plugin not in p.prefilters + p.filters + p.reserves  # ignored: nothing is built for it


def _instead(plugin: str) -> str:
    return _INSTEAD[plugin]


def test_an_unknown_plugin_at_a_point_is_still_an_error() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(_cfg(profiles=[{"plugins": {"filter": {"enabled": [{"name": "NoSuchPlugin"}]}}}]))
    assert err.value.path == "<config>: profiles[0].plugins.filter.enabled[0].name"


def _configmap(data: dict[str, str] | None, name: str = "vecsched-config") -> dict[str, Any]:
    cm: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "vecsched"}}
    if data is not None:
        cm["data"] = data
    return cm


_PACKER = "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nprofiles:\n- schedulerName: packer\n"


def test_the_shipped_configmap_is_read_as_its_configuration() -> None:
    # deploy/config.yaml is a ConfigMap; --config takes it as the file under data[config.yaml].
    shipped = Path(__file__).resolve().parents[2] / "deploy" / "config.yaml"
    source = f"{shipped}: data[config.yaml]"
    inner = parse_config(yaml.safe_load(yaml.safe_load(shipped.read_text())["data"]["config.yaml"]), source=source)
    assert load_config(shipped) == inner


@pytest.mark.parametrize(("data", "file", "profiles", "error"), [
    # config.yaml wins over other keys; any one key ending in .yaml/.yml/.json is taken
    ({"config.yaml": _PACKER, "notes.txt": "x"}, "cm.yaml", ["packer"], ""),
    ({"sched.yml": _PACKER}, "cm.yaml", ["packer"], ""),
    ({"sched.json": json.dumps(yaml.safe_load(_PACKER))}, "cm.yaml", ["packer"], ""),
    # the key's own errors name the file and the key, as the webhook names the field
    ({"config.yaml": _PACKER.replace("packer", "packer\n  bogus: 1")}, "cm.yaml", [],
     "{f}: data[config.yaml]: profiles[0].bogus: unknown field"),
    ({"config.yaml": "profiles: ["}, "cm.yaml", [], "{f}: data[config.yaml]: not valid YAML: "),
    # no configuration, or two with none called config.yaml: one line saying how to extract it
    ({"a.yaml": _PACKER, "b.yaml": _PACKER}, "cm.yaml", [],
     "{f}: a ConfigMap (vecsched-config) holding no one configuration (its data keys are 'a.yaml', 'b.yaml'); "
     "extract it with: kubectl get configmap vecsched-config -o jsonpath='{{.data.KEY}}' > config.yaml"),
    (None, "cm.json", [], "{f}: a ConfigMap (vecsched-config) holding no one configuration (it has no data); "
                         "extract it with: kubectl get configmap vecsched-config -o jsonpath='{{.data.KEY}}' > "
                         "config.yaml"),
])
def test_a_configmap_as_config(tmp_path: Any, data: dict[str, str] | None, file: str, profiles: list[str],
                               error: str) -> None:
    path = tmp_path / file
    cm = _configmap(data)
    path.write_text(json.dumps(cm) if file.endswith(".json") else yaml.safe_dump(cm))
    if not error:
        assert [p.scheduler_name for p in load_config(path).profiles] == profiles
        return
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert message.startswith(error.format(f=path)), message
    assert "\n" not in message
