"""Hostile bodies (deep nesting, alias bombs, copy bombs, too many operations) get a cheap 4xx, never a 500."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.apiserver.errors import ApiError
from scheduler.apiserver.limits import MAX_DEPTH, check_depth, loads_json, safe_yaml_load
from scheduler.apiserver.patch import MAX_JSON_PATCH_OPERATIONS, json_patch, merge_patch, strategic_merge_patch

LIMIT = 3 * 1024 * 1024  # http.MAX_BODY_BYTES, kube-apiserver's MaxRequestBodyBytes and JSONPatchMaxCopyBytes
PEAK_BYTES = 20 * 1024 * 1024
DEPTH_MESSAGE = f"json parse error: exceeded max depth (limit is {MAX_DEPTH} nested objects and arrays)"
TOO_LARGE = f"Request entity too large: limit is {LIMIT}"


@contextmanager
def _peak_under(limit: int) -> Iterator[None]:
    """Fail if the block's Python allocations ever exceed ``limit`` bytes at once."""
    tracemalloc.start()
    try:
        yield
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < limit, f"peak allocation {peak:,} bytes"


def _refused(call: Callable[[], Any]) -> ApiError:
    with _peak_under(PEAK_BYTES), pytest.raises(ApiError) as e:
        call()
    return e.value


def _nested(depth: int) -> list[Any]:
    """``[[...[]...]]`` ``depth`` levels deep, built without recursion."""
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


# ---- depth ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "why"), [
    (b"[" * 100_000 + b"]" * 100_000, "too deep for the C decoder: its RecursionError is converted"),
    (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "same with objects"),
    (b'{"a":' * (MAX_DEPTH + 1) + b"1" + b"}" * (MAX_DEPTH + 1), "parses, but one level over MAX_DEPTH"),
])
def test_deep_json_is_400(body: bytes, why: str) -> None:
    e = _refused(lambda: loads_json(body))
    assert (e.code, e.reason, e.message) == (400, "BadRequest", DEPTH_MESSAGE), why


@pytest.mark.parametrize(("depth", "ok"), [
    (0, True),  # a scalar
    (MAX_DEPTH, True),
    (MAX_DEPTH + 1, False),
    (100_000, False),  # measured iteratively: no RecursionError
])
def test_check_depth(depth: int, ok: bool) -> None:
    value: Any = "scalar" if depth == 0 else _nested(depth)
    if ok:
        check_depth(value)
        return
    with pytest.raises(ApiError) as e:
        check_depth(value)
    assert e.value.message == DEPTH_MESSAGE


def test_loads_json_keeps_value_errors_for_the_caller() -> None:
    assert loads_json(b'{"a": [1, {"b": null}]}') == {"a": [1, {"b": None}]}
    with pytest.raises(ValueError):
        loads_json(b'{"a": ')


def _block_yaml(depth: int) -> str:
    return "".join(" " * i + "a:\n" for i in range(depth)) + " " * depth + "1\n"


def _flow(depth: int, inner: str = "") -> str:
    return "[" * depth + inner + "]" * depth


@pytest.mark.parametrize("text", [
    _flow(100_000),  # past libyaml's own cap of 1,000 levels, reported as ours
    _block_yaml(1_000),  # block style: refused while parsing, at level 201
    _flow(MAX_DEPTH + 1),
    # 150 + 100 levels: each part is within the limit, the alias nests one inside the other
    f"a: &a {_flow(150)}\nb: {_flow(100, '*a')}\n",
])
def test_deep_yaml_is_400(text: str) -> None:
    e = _refused(lambda: safe_yaml_load(text, max_bytes=LIMIT))
    assert (e.code, e.reason, e.message) == (400, "BadRequest", DEPTH_MESSAGE)


# ---- YAML aliases --------------------------------------------------------------------------


def _laughs(levels: int) -> str:
    """The billion laughs: each level is a list of nine aliases to the previous one."""
    lines = ['l0: &l0 "lol"']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def test_billion_laughs_is_413_without_expanding() -> None:
    text = _laughs(9)
    # 9 ** 9 = 387,420,489 "lol"s (about 2.3 GB of JSON) from a 400-byte document. Level k is
    # 2 + 8 + 9 * level(k - 1) bytes: 55, 505, 4,555, 41,005, 369,055, then 3,321,505 > 3 MiB, so the
    # refusal comes while level 6 is summed, long before anything of that size exists.
    assert len(text) < 600
    e = _refused(lambda: safe_yaml_load(text, max_bytes=LIMIT))
    assert (e.code, e.reason, e.message) == (413, "RequestEntityTooLarge", TOO_LARGE)


def test_an_alias_inside_its_own_anchor_is_413() -> None:
    e = _refused(lambda: safe_yaml_load("a: &a [1, *a]\n", max_bytes=LIMIT))
    assert (e.code, e.message) == (413, TOO_LARGE)


@pytest.mark.parametrize(("text", "max_bytes", "expected"), [
    # l1 is ["lol" x 9] = 2 + 8 commas + 9 * 5 = 55 bytes, l2 nine of those = 2 + 8 + 9 * 55 = 505, and
    # {"l0":"lol","l1":...,"l2":...} = 2 + 2 commas + (4 + 1 + 5) + (4 + 1 + 55) + (4 + 1 + 505) = 584
    (_laughs(2), 584, "ok"),
    (_laughs(2), 583, "413"),
    # merge keys and aliases of small anchors load as usual; timestamps stay strings, as in Kubernetes
    ("base: &b {cpu: 1}\nx: {<<: *b, mem: 2}\nt: 2024-01-01T00:00:00Z\n", 1_000,
     {"base": {"cpu": 1}, "x": {"cpu": 1, "mem": 2}, "t": "2024-01-01T00:00:00Z"}),
    ("", 1_000, None),
])
def test_yaml_expansion_limit(text: str, max_bytes: int, expected: Any) -> None:
    if expected == "413":
        with pytest.raises(ApiError) as e:
            safe_yaml_load(text, max_bytes=max_bytes)
        assert (e.value.code, e.value.message) == (413, f"Request entity too large: limit is {max_bytes}")
    elif expected == "ok":
        assert isinstance(safe_yaml_load(text, max_bytes=max_bytes), dict)
    else:
        assert safe_yaml_load(text, max_bytes=max_bytes) == expected


@pytest.mark.parametrize("text", [
    "a: [1, 2\n",  # unclosed flow sequence
    "a: 1\n---\nb: 2\n",  # two documents
    "a: " + "9" * 5_000 + "\n",  # an integer past Python's 4,300-digit conversion limit
    "? [a]\n: b\n",  # an unhashable key
])
def test_bad_yaml_is_400(text: str) -> None:
    with pytest.raises(ApiError) as e:
        safe_yaml_load(text, max_bytes=LIMIT)
    assert (e.value.code, e.value.reason) == (400, "BadRequest")
    assert e.value.message.startswith("error converting YAML to JSON: ")


# ---- JSON patch ----------------------------------------------------------------------------


def test_copy_bomb_is_422_after_a_few_copies() -> None:
    # "a" is 1,000 env entries of 30 + 71 bytes: 2 + 101,000 + 999 commas = 102,001 bytes of JSON. Each
    # copy of "a" into itself doubles it plus a comma: 204,003, 408,007, 816,015, 1,632,031. The fifth
    # copy brings the copies to 102,001 + ... + 1,632,031 = 3,162,057 > 3 MiB while the document is
    # 1.6 MB, so the accumulated-copy limit (upstream's JSONPatchMaxCopyBytes, a 422) answers and the
    # last fifteen operations (100 GB of JSON) never run.
    target = {"metadata": {"name": "bomb"}, "a": [{"name": f"VAR_{i:04}", "value": "v" * 71} for i in range(1_000)]}
    assert len(json.dumps(target["a"], separators=(",", ":"))) == 102_001
    ops = [{"op": "copy", "from": "/a", "path": "/a/0"}] * 20
    e = _refused(lambda: json_patch(target, ops, max_bytes=LIMIT))
    assert (e.code, e.reason, e.message) == (
        422, "Invalid", "the server rejected our request due to an error in our request: Unable to complete the copy, "
                        f"the accumulated size increase of copy is 3162057, exceeding the limit {LIMIT}")


def test_copies_count_even_when_removed_again() -> None:
    # copy 1 MB, remove it, four times: the document never passes 2 MB, but the copies total 4 MB
    target = {"big": "x" * 1_000_000}
    ops = [op for _ in range(4) for op in ({"op": "copy", "from": "/big", "path": "/tmp"}, {"op": "remove", "path": "/tmp"})]
    e = _refused(lambda: json_patch(target, ops, max_bytes=LIMIT))
    assert (e.code, e.reason) == (422, "Invalid")
    assert json_patch(target, ops[:6], max_bytes=LIMIT) == target  # three round trips: 3 MB of copies pass


def test_growth_past_the_limit_is_413() -> None:
    # a 2 MB document plus 1.5 MB of added values would be 3.5 MB > 3 MiB: refused before the second add
    target = {"big": "x" * 2_000_000}
    ops = [{"op": "add", "path": f"/v{i}", "value": "y" * 750_000} for i in range(2)]
    e = _refused(lambda: json_patch(target, ops, max_bytes=LIMIT))
    assert (e.code, e.reason, e.message) == (413, "RequestEntityTooLarge", TOO_LARGE)
    # replacing the big value gives its bytes back: 2 MB -> 0.75 MB + 0.75 MB passes
    swap = [{"op": "replace", "path": "/big", "value": "y" * 750_000}, ops[0]]
    assert len(json_patch(target, swap, max_bytes=LIMIT)["v0"]) == 750_000
    # without max_bytes (the default) nothing is counted, as before
    assert len(json_patch(target, ops)) == 3


def test_too_many_operations_is_413() -> None:
    ops = [{"op": "test", "path": "/a", "value": 1}] * (MAX_JSON_PATCH_OPERATIONS + 1)
    e = _refused(lambda: json_patch({"a": 1}, ops))
    assert (e.code, e.reason, e.message) == (
        413, "RequestEntityTooLarge",
        "Request entity too large: The allowed maximum operations in a JSON patch is 10000, got 10001")
    assert json_patch({"a": 1}, ops[:MAX_JSON_PATCH_OPERATIONS]) == {"a": 1}  # exactly the maximum is fine


@pytest.mark.parametrize("count", [MAX_DEPTH + 5, 600])
def test_copying_a_value_into_itself_cannot_nest_past_the_limit(count: int) -> None:
    # each copy of /a into /a/z nests one level deeper: past MAX_DEPTH the result is refused, and far
    # past it the deep copies' RecursionError is converted
    ops = [{"op": "copy", "from": "/a", "path": "/a/z"}] * count
    with pytest.raises(ApiError) as e:
        json_patch({"a": {}}, ops)
    assert (e.value.code, e.value.message) == (400, DEPTH_MESSAGE)


# ---- merge patches cannot grow beyond target plus patch ------------------------------------

_KEYS = st.sampled_from(["a", "b", "name", "type", "containers", "conditions", "env", "finalizers", "args",
                         "$patch", "$retainKeys", "$setElementOrder/containers", "$deleteFromPrimitiveList/finalizers"])
_SCALARS = st.none() | st.booleans() | st.integers(-5, 5) | st.sampled_from(["a", "b", "name", "replace", "delete"])
_JSON = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=4),
                     max_leaves=24)


def _size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")))


@settings(max_examples=400, deadline=None)
@given(target=st.dictionaries(_KEYS, _JSON, max_size=5), patch=st.dictionaries(_KEYS, _JSON, max_size=5))
def test_merge_patches_stay_within_target_plus_patch(target: dict[str, Any], patch: dict[str, Any]) -> None:
    # every key of the result comes from the target or the patch, every value is at most the two merged:
    # so neither patch type needs json_patch's running size check
    assert _size(merge_patch(target, patch)) <= _size(target) + _size(patch)
    try:
        result = strategic_merge_patch(target, patch)
    except ApiError as e:
        assert e.code == 400  # ill-typed directives ($retainKeys of objects...) are refused, not grown
        return
    assert _size(result) <= _size(target) + _size(patch)
