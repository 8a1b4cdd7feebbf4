"""The fuzz harness's inputs: real documents, and the hostile edits made to them.

``benchmarks.fuzz`` feeds what this module makes to every reader of outside
documents. The seeds are the valid objects the project ships (deploy/ and the
YAML blocks of docs/), so that a mutation lands deep inside something a reader
would otherwise accept; the mutations are what a careless or hostile writer
produces: a value of the wrong type at any path, integers of 2^63 and beyond,
long strings, deep nesting, YAML integer keys and aliases, binary garbage,
truncation, NaN.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

__all__ = ["ROOT", "METRICS_SAMPLE", "Seeds", "load_seeds", "mutate", "dump"]

ROOT: Final = Path(__file__).resolve().parents[1]
_DEEP: Final = "\x00DEEP\x00"
"""Placeholder in a mutated tree for a deep nesting, spliced into the text after dumping (a
serialiser would recurse on the nesting itself)."""


# ---- seeds -------------------------------------------------------------------------------------


@dataclass
class Seeds:
    """Valid documents to mutate, by kind, from deploy/ and docs/."""

    snapshots: list[list[dict[str, Any]]] = field(default_factory=list)
    """Each a List's items, as a snapshot file holds them."""
    objects: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Every object found, by kind."""
    configs: list[dict[str, Any]] = field(default_factory=list)
    """KubeSchedulerConfiguration documents."""

    def of(self, kind: str) -> list[dict[str, Any]]:
        return self.objects.get(kind, [])


def _documents() -> Iterator[Any]:
    """Every YAML document of deploy/ and every YAML block of docs/ that parses."""
    texts = [p.read_text() for p in sorted((ROOT / "deploy").rglob("*.yaml"))]
    for p in sorted((ROOT / "docs").glob("*.md")):
        texts += [b.removeprefix("yaml\n") for b in p.read_text().split("```")[1::2] if b.startswith("yaml\n")]
    for text in texts:
        try:
            yield from (d for d in yaml.safe_load_all(text) if isinstance(d, dict))
        except yaml.YAMLError:
            continue


def load_seeds() -> Seeds:
    """The seeds: Lists become snapshots, ConfigMaps' configurations configs, the rest objects."""
    seeds = Seeds()

    def add(obj: dict[str, Any]) -> None:
        kind = obj.get("kind")
        if isinstance(kind, str):
            seeds.objects.setdefault(kind, []).append(obj)
        if kind == "KubeSchedulerConfiguration":
            seeds.configs.append(obj)
        if kind == "ConfigMap":
            for key, text in (obj.get("data") or {}).items():
                if key.endswith((".yaml", ".yml")) and isinstance(text, str):
                    with contextlib.suppress(yaml.YAMLError):
                        doc = yaml.safe_load(text)
                        if isinstance(doc, dict):
                            add(doc)

    for doc in _documents():
        if doc.get("kind") == "List" and isinstance(doc.get("items"), list):
            items = [i for i in doc["items"] if isinstance(i, dict)]
            seeds.snapshots.append(items)
            for item in items:
                add(item)
        else:
            add(doc)
    seeds.objects.setdefault("WatcherMetrics", []).append(METRICS_SAMPLE)
    return seeds


METRICS_SAMPLE: Final[dict[str, Any]] = {
    "timestamp": 1700000000, "window": {"duration": "15m", "start": 1699999100, "end": 1700000000},
    "source": "Prometheus", "data": {"NodeMetricsMap": {
        "general-a": {"metrics": [{"name": "instance:node_cpu:ratio", "type": "CPU", "operator": "AVG",
                                   "rollup": "15m", "value": 42.5},
                                  {"name": "instance:node_memory_utilisation:ratio", "type": "Memory",
                                   "operator": "AVG", "rollup": "15m", "value": 30}]}}},
}
"""A WatcherMetrics sample as load-watcher serves it (docs/load-aware.md)."""


# ---- mutations ---------------------------------------------------------------------------------


def _hostile(rng: random.Random, old: Any) -> Any:
    """A value a careless or hostile writer might put where ``old`` was."""
    n = rng.randrange(34)
    return [
        None, True, False, 0, -1, 1, 2**31, 2**63 - 1, 2**63, -(2**63) - 1, 2**64, 10**40, -(10**40),
        1.5, 1e308, math.nan, math.inf, -math.inf, "", "-1", "1e9999", "9" * 40, "\x00\xff\u202e",
        "x" * rng.choice((64, 300, 5000, 200_000)), [], {}, [old], {"k": old},
        str(old)[:100], _DEEP, {1: "x", 2.5: "y"}, [None, None], {"": ""}, rng.choice((-(2**70), 0.1)),
    ][n]


def _locations(doc: Any) -> list[tuple[Any, Any]]:
    """(container, key or index) of every value in ``doc``, iteratively."""
    out: list[tuple[Any, Any]] = []
    stack = [doc]
    while stack:
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for k, v in items:
            out.append((node, k))
            if isinstance(v, (dict, list)):
                stack.append(v)
    return out


def mutate(doc: Any, rng: random.Random) -> Any:
    """A copy of ``doc`` with one to three hostile edits at random paths: a value replaced,
    wrapped, stringified or removed, a key made an integer, an unknown field added."""
    doc = copy.deepcopy(doc)
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        where = _locations(doc)
        if not where:
            return _hostile(rng, doc)
        node, key = rng.choice(where)
        op = rng.randrange(10)
        if op < 6:
            node[key] = _hostile(rng, node[key])
        elif op == 6 and isinstance(node, dict):
            del node[key]
        elif op == 7 and isinstance(node, dict):
            node[rng.choice((7, "unknownField", key.upper() if isinstance(key, str) else 1))] = node.pop(key)
        elif op == 8 and isinstance(node, dict):
            node["x" * rng.choice((3, 300))] = _hostile(rng, None)
        else:
            node[key] = [node[key]] if rng.random() < .5 else {"value": node[key]}
    return doc


def _deep(rng: random.Random, yaml_text: bool) -> str:
    depth = rng.choice((101, 1_000, 100_000))
    if rng.random() < .5:
        return "[" * depth + "]" * depth
    return "{a: " * depth + "1" + "}" * depth if yaml_text else '{"a": ' * depth + "1" + "}" * depth


def dump(doc: Any, rng: random.Random, *, as_yaml: bool, spoil: bool = True) -> bytes:
    """``doc`` as JSON or YAML text (deep nestings spliced in), with ``spoil`` sometimes spoiled as
    text: truncated, with bytes flipped or binary garbage inserted, a number made thousands of
    digits long, an alias bomb appended."""
    if as_yaml:
        text = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)
        text = text.replace(repr(_DEEP).strip("'"), _deep(rng, True)).replace('"\\0DEEP\\0"', _deep(rng, True))
    else:
        text = json.dumps(doc, allow_nan=True, ensure_ascii=rng.random() < .5)
        text = text.replace(json.dumps(_DEEP), _deep(rng, False))
    data = text.encode("utf-8", "surrogatepass")
    r = rng.random() if spoil else 1.0
    if r < .06 and data:
        data = data[: rng.randrange(len(data))]
    elif r < .10 and data:
        i = rng.randrange(len(data))
        data = data[:i] + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 16))) + data[i:]
    elif r < .12:
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 2000)))
    elif r < .14:
        data = data.replace(b"1", b"1" * rng.choice((30, 5000)), 1)
    elif r < .16 and as_yaml:
        bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
            for i in range(12))
        data = bomb.encode() if rng.random() < .5 else data + b"\n---\n" + bomb.encode()
    elif r < .18:
        data = b""
    return data
