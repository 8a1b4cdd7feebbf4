"""Args of NodeResourcesFit and NodeResourcesBalancedAllocation: upstream's v1
defaults, then upstream's validation (validation_pluginargs_test.go's
TestValidateFitArgs, TestValidate{Least,Most}AllocatedScoringStrategy,
TestValidateRequestedToCapacityRatioScoringStrategy,
TestValidateNodeResourcesBalancedAllocationArgs, and the weight cases of
least/most_allocated_test.go), each error named by its full field path.

Upstream's validation tests feed the *internal* config, where a weight of 0 is
an error; a v1 file goes through defaulting first, which turns 0 into 1. Those
cases are ported with the v1 outcome. Shape errors carry the field's real path,
``scoringStrategy.requestedToCapacityRatio.shape[i]``, as current upstream does.
"""

from __future__ import annotations

from typing import Any

import pytest

from scoring.args import ArgsError
from scoring.plugins import balanced_allocation, node_resources_fit
from scoring.plugins.resource_args import ResourceSpec, ScoringStrategy

BASE = "profiles[0].pluginConfig[0].args"
CPU_MEM = (ResourceSpec("cpu", 1), ResourceSpec("memory", 1))


def _res(*weights: tuple[str, int]) -> list[dict[str, Any]]:
    return [{"name": n, "weight": w} for n, w in weights]


def _rtcr(shape: list[tuple[int, int]] | None, resources: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    s: dict[str, Any] = {"type": "RequestedToCapacityRatio", "requestedToCapacityRatio": {}}
    if shape is not None:
        s["requestedToCapacityRatio"]["shape"] = [{"utilization": u, "score": v} for u, v in shape]
    if resources is not None:
        s["resources"] = resources
    return {"scoringStrategy": s}


def _least(resources: list[dict[str, Any]] | None, type_: str = "LeastAllocated") -> dict[str, Any]:
    s: dict[str, Any] = {"type": type_}
    if resources is not None:
        s["resources"] = resources
    return {"scoringStrategy": s}


SS = "scoringStrategy"
SHAPE = f"{SS}.requestedToCapacityRatio.shape"

FIT_ERRORS = [
    # TestValidateFitArgs
    pytest.param({"ignoredResources": ["longvalue" + "a" * 64]}, "ignoredResources[0]",
                 "name part must be no more than 63 characters", id="IgnoredResources: too long value"),
    pytest.param({"ignoredResources": ["example.com/"]}, "ignoredResources[0]", "name part must be non-empty",
                 id="IgnoredResources: name is empty"),
    pytest.param({"ignoredResources": ["example.com/aaa/bbb"]}, "ignoredResources[0]",
                 "a qualified name must consist of alphanumeric characters", id="IgnoredResources: name has too many slash"),
    pytest.param({"ignoredResourceGroups": ["example.com/"]}, "ignoredResourceGroups[0]", "name part must be non-empty",
                 id="IgnoredResourceGroups: illegal args"),
    pytest.param({"ignoredResourceGroups": ["a" * 64]}, "ignoredResourceGroups[0]",
                 "name part must be no more than 63 characters", id="IgnoredResourceGroups: name is too long"),
    pytest.param({"ignoredResourceGroups": ["example.com/aa"]}, "ignoredResourceGroups[0]",
                 "resource group name can't contain '/'", id="IgnoredResourceGroups: name cannot be contain slash"),
    pytest.param({SS: {"type": "Invalid"}}, f"{SS}.type", 'Unsupported value: "Invalid"',
                 id="ScoringStrategy: type is unsupported"),
    # TestValidate{Least,Most}AllocatedScoringStrategy
    pytest.param(_least(_res(("cpu", 101))), f"{SS}.resources[0].weight", "not in valid range (0, 100]",
                 id="LeastAllocated: weight greater than max"),
    # cpu's 0 is defaulted to 1; memory's 101 is still out of range
    pytest.param(_least(_res(("cpu", 0), ("memory", 101))), f"{SS}.resources[1].weight", "not in valid range (0, 100]",
                 id="LeastAllocated: multi invalid resources"),
    pytest.param(_least(_res(("cpu", 101)), "MostAllocated"), f"{SS}.resources[0].weight", "not in valid range (0, 100]",
                 id="MostAllocated: weight greater than max"),
    pytest.param(_least(_res(("cpu", 0), ("memory", 101)), "MostAllocated"), f"{SS}.resources[1].weight",
                 "not in valid range (0, 100]", id="MostAllocated: multi invalid resources"),
    # least_allocated_test.go / most_allocated_test.go
    pytest.param(_least(_res(("memory", -1), ("cpu", 1))), f"{SS}.resources[0].weight",
                 "resource weight of memory not in valid range (0, 100]", id="LeastAllocated: resource with negative weight"),
    pytest.param(_least(_res(("memory", 1), ("cpu", 101))), f"{SS}.resources[1].weight", "not in valid range (0, 100]",
                 id="LeastAllocated: resource weight larger than MaxNodeScore"),
    pytest.param(_least(_res(("memory", -1), ("cpu", 1)), "MostAllocated"), f"{SS}.resources[0].weight",
                 "not in valid range (0, 100]", id="MostAllocated: resource with negative weight"),
    pytest.param(_least(_res(("memory", 101)), "MostAllocated"), f"{SS}.resources[0].weight", "not in valid range (0, 100]",
                 id="MostAllocated: resource weight larger than MaxNodeScore"),
    # TestValidateRequestedToCapacityRatioScoringStrategy
    pytest.param(_rtcr(None), SHAPE, "at least one point must be specified", id="no shapes"),
    pytest.param(_rtcr([(30, 3)], _res(("cpu", 101))), f"{SS}.resources[0].weight", "not in valid range (0, 100]",
                 id="RequestedToCapacityRatio: weight greater than max"),
    pytest.param(_rtcr([(-1, 3)]), f"{SHAPE}[0].utilization", "not in valid range [0, 100]", id="utilization less than min"),
    pytest.param(_rtcr([(101, 3)]), f"{SHAPE}[0].utilization", "not in valid range [0, 100]",
                 id="utilization greater than max"),
    pytest.param(_rtcr([(10, 3), (10, 3)]), f"{SHAPE}[1].utilization", "values must be sorted in increasing order",
                 id="duplicated utilization values"),
    pytest.param(_rtcr([(10, 3), (20, 3), (15, 3)]), f"{SHAPE}[2].utilization", "values must be sorted in increasing order",
                 id="non-increasing utilization values"),
    pytest.param(_rtcr([(10, -1)]), f"{SHAPE}[0].score", "not in valid range [0, 10]", id="score less than min"),
    pytest.param(_rtcr([(10, 11)]), f"{SHAPE}[0].score", "not in valid range [0, 10]", id="score greater than max"),
    # current upstream: the shape's parent is required for RequestedToCapacityRatio, forbidden otherwise
    pytest.param({SS: {"type": "RequestedToCapacityRatio"}}, f"{SS}.requestedToCapacityRatio", "Required value",
                 id="vecsched: requestedToCapacityRatio required"),
    pytest.param({SS: {"type": "MostAllocated", "requestedToCapacityRatio": {"shape": [{"utilization": 0, "score": 0}]}}},
                 f"{SS}.requestedToCapacityRatio", "Forbidden", id="vecsched: requestedToCapacityRatio forbidden"),
    pytest.param({SS: {}}, f"{SS}.type", 'Unsupported value: ""', id="vecsched: empty strategy has no type"),
    # strict decoding
    pytest.param({"ignoredResource": []}, "ignoredResource", "unknown field", id="vecsched: unknown field"),
    pytest.param({SS: {"type": "LeastAllocated", "resources": [{"name": "cpu", "weigth": 2}]}}, f"{SS}.resources[0].weigth",
                 "unknown field", id="vecsched: unknown resource field"),
    pytest.param({SS: {"type": "LeastAllocated", "resources": [{"name": "cpu", "weight": "2"}]}}, f"{SS}.resources[0].weight",
                 "expected an integer", id="vecsched: weight not an integer"),
    pytest.param({SS: {"type": "RequestedToCapacityRatio", "requestedToCapacityRatio": {"shape": [{"utilization": 1.5}]}}},
                 f"{SHAPE}[0].utilization", "expected an integer", id="vecsched: utilization not an integer"),
    pytest.param({"ignoredResources": "example.com/a"}, "ignoredResources", "expected a list",
                 id="vecsched: ignoredResources not a list"),
]


@pytest.mark.parametrize(("args", "path", "message"), FIT_ERRORS)
def test_fit_args_errors(args: dict[str, Any], path: str, message: str) -> None:
    with pytest.raises(ArgsError) as err:
        node_resources_fit.new(args, BASE)
    assert err.value.path == f"{BASE}.{path}"
    assert message in err.value.problem


FIT_VALID = [
    # no args: LeastAllocated over cpu and memory
    pytest.param({}, ScoringStrategy("LeastAllocated", CPU_MEM), id="ScoringStrategy: field is required (v1 default)"),
    pytest.param({"ignoredResources": ["example.com"]}, ScoringStrategy("LeastAllocated", CPU_MEM),
                 id="IgnoredResources: valid args"),
    pytest.param({"ignoredResourceGroups": ["example.com"]}, ScoringStrategy("LeastAllocated", CPU_MEM),
                 id="IgnoredResourceGroups: valid args "),
    pytest.param(_least(None), ScoringStrategy("LeastAllocated", CPU_MEM), id="LeastAllocated: default config"),
    pytest.param(_least(_res(("cpu", 1), ("memory", 10))),
                 ScoringStrategy("LeastAllocated", (ResourceSpec("cpu", 1), ResourceSpec("memory", 10))),
                 id="LeastAllocated: multi valid resources"),
    # v1 defaulting turns weight 0 into 1 before validation
    pytest.param(_least(_res(("cpu", 0))), ScoringStrategy("LeastAllocated", (ResourceSpec("cpu", 1),)),
                 id="LeastAllocated: weight less than min (v1 default)"),
    pytest.param(_least(_res(("memory", 1), ("cpu", 0))),
                 ScoringStrategy("LeastAllocated", (ResourceSpec("memory", 1), ResourceSpec("cpu", 1))),
                 id="LeastAllocated: resource with zero weight (v1 default)"),
    pytest.param(_least(None, "MostAllocated"), ScoringStrategy("MostAllocated", CPU_MEM), id="MostAllocated: default config"),
    pytest.param(_least(_res(("cpu", 1), ("memory", 10)), "MostAllocated"),
                 ScoringStrategy("MostAllocated", (ResourceSpec("cpu", 1), ResourceSpec("memory", 10))),
                 id="MostAllocated: multi valid resources"),
    pytest.param(_least(_res(("cpu", 0)), "MostAllocated"), ScoringStrategy("MostAllocated", (ResourceSpec("cpu", 1),)),
                 id="MostAllocated: weight less than min (v1 default)"),
    pytest.param(_rtcr([(30, 3)]), ScoringStrategy("RequestedToCapacityRatio", CPU_MEM, ((30, 3),)), id="valid shapes"),
    pytest.param(_rtcr([(30, 3)], _res(("cpu", 0))),
                 ScoringStrategy("RequestedToCapacityRatio", (ResourceSpec("cpu", 1),), ((30, 3),)),
                 id="RequestedToCapacityRatio: weight less than min (v1 default)"),
    pytest.param(_rtcr([(10, 3), (20, 3), (30, 3)]),
                 ScoringStrategy("RequestedToCapacityRatio", CPU_MEM, ((10, 3), (20, 3), (30, 3))),
                 id="increasing utilization values"),
    # upstream does not reject repeated names for NodeResourcesFit (only for BalancedAllocation)
    pytest.param(_least(_res(("cpu", 1), ("cpu", 2))),
                 ScoringStrategy("LeastAllocated", (ResourceSpec("cpu", 1), ResourceSpec("cpu", 2))),
                 id="vecsched: repeated resource names are accepted"),
]


@pytest.mark.parametrize(("args", "strategy"), FIT_VALID)
def test_fit_args_valid(args: dict[str, Any], strategy: ScoringStrategy) -> None:
    assert node_resources_fit.new(args, BASE).args.strategy == strategy


BALANCED_ERRORS = [
    pytest.param({"resources": _res(("cpu", 2), ("memory", 1))}, "resources[0].weight", "must be 1", id="invalid config"),
    pytest.param({"resources": _res(("cpu", 1), ("cpu", 1))}, "resources[1].name", "Duplicate value", id="repeated resources"),
    pytest.param({"resource": []}, "resource", "unknown field", id="vecsched: unknown field"),
]


@pytest.mark.parametrize(("args", "path", "message"), BALANCED_ERRORS)
def test_balanced_allocation_args_errors(args: dict[str, Any], path: str, message: str) -> None:
    with pytest.raises(ArgsError) as err:
        balanced_allocation.new(args, BASE)
    assert err.value.path == f"{BASE}.{path}"
    assert message in err.value.problem


@pytest.mark.parametrize(
    ("args", "resources"),
    [
        pytest.param({"resources": _res(("cpu", 1), ("memory", 1))}, CPU_MEM, id="valid config"),
        pytest.param({}, CPU_MEM, id="vecsched: default cpu and memory"),
        # weight 0 (or none) is defaulted to 1
        pytest.param({"resources": [{"name": "cpu"}, {"name": "nvidia.com/gpu", "weight": 0}]},
                     (ResourceSpec("cpu", 1), ResourceSpec("nvidia.com/gpu", 1)), id="vecsched: weights default to 1"),
    ],
)
def test_balanced_allocation_args_valid(args: dict[str, Any], resources: tuple[ResourceSpec, ...]) -> None:
    assert balanced_allocation.new(args, BASE).resources == resources


def test_errors_without_a_path_prefix() -> None:
    with pytest.raises(ArgsError) as err:
        node_resources_fit.new(_least(_res(("cpu", 101))), "")
    assert err.value.path == "scoringStrategy.resources[0].weight"
