"""``/validate-config``: a broken KubeSchedulerConfiguration never reaches the scheduler.

vecsched reads its profiles from a ConfigMap mounted as a file; a typo there
is only found when the scheduler restarts and exits. This webhook reads the
ConfigMap when it is written instead (those labelled ``vecsched.io/config``):
every ``data`` key ending in ``.yaml``, ``.yml`` or ``.json`` is decoded as
``vecsched run --config`` decodes a file of that name (JSON for ``.json``,
YAML otherwise) and validated by the same ``scheduler.config.parse_config``,
plugin args included. A failure is a field error on ``data[<key>]`` whose text
is exactly what ``vecsched run --config <key>`` prints, with ``data[<key>]`` in
place of the file's path: ``data[config.yaml]: profiles[0].plugins.score.
enabled[0].name: unknown plugin 'Foo' (known: ...)``. The configuration's own
warnings (fields accepted but unused) become the response's warnings.

A ConfigMap is written by people with far less power than the scheduler's
operator, so decoding is bounded: nesting deeper than ``MAX_DEPTH`` and YAML
whose aliases expand past ``MAX_YAML_NODES`` nodes ("billion laughs") are
field errors, found from the parser's events and node graph before anything
is built.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

import yaml

from scheduler.config import ConfigError, parse_config
from scheduler.webhook.review import MAX_DEPTH, FieldError, invalid

__all__ = ["CONFIG_LABEL", "CONFIG_SUFFIXES", "MAX_YAML_NODES", "validate_config_map"]

CONFIG_LABEL: Final = "vecsched.io/config"
CONFIG_SUFFIXES: Final = (".yaml", ".yml", ".json")
MAX_YAML_NODES: Final = 100_000
"""Nodes a configuration may expand to. A profile with every plugin's args spelled out is a few
hundred; 100,000 leaves room for many profiles and refuses exponential alias expansion early."""
_LOADER: Final[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml when PyYAML has it: PyYAML's own scanner is far slower, and quadratic on deep flow collections."""
_EXACT_MESSAGE_CHARS: Final = 256 * 1024
"""Up to this size, a YAML error's text is taken from PyYAML's own parser, which ``vecsched run``
uses (libyaml words a few errors differently); past it, from libyaml, to stay within the budget."""


class _Unsafe(ValueError):
    """A document too deep or expanding too far to be decoded."""


def _check_yaml(text: str) -> None:
    """Refuse ``text`` if it nests deeper than MAX_DEPTH or its aliases expand past MAX_YAML_NODES."""
    depth = 0
    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise _Unsafe(f"nests deeper than {MAX_DEPTH} levels")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    # Depth is bounded now, so composing (recursive in PyYAML) and sizing below are safe.
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise _Unsafe("has a recursive alias")
        open_nodes.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        open_nodes.discard(key)
        if total > MAX_YAML_NODES:
            raise _Unsafe(f"expands to more than {MAX_YAML_NODES} YAML nodes (through aliases)")
        sizes[key] = total
        return total

    for document in yaml.compose_all(text, Loader=_LOADER):
        if document is not None:
            size(document)


def _decode(key: str, text: str, source: str) -> Any:
    """``text`` decoded as ``load_config`` decodes a file named ``key``, with its error messages."""
    is_json = key.endswith(".json")
    try:
        if is_json:
            return json.loads(text)
        _check_yaml(text)
        return yaml.load(text, Loader=_LOADER)
    except RecursionError:
        raise ConfigError(source, f"nests deeper than {MAX_DEPTH} levels") from None
    except _Unsafe as e:
        raise ConfigError(source, str(e)) from None
    except json.JSONDecodeError as e:
        raise ConfigError(source, f"not valid JSON: {str(e).splitlines()[0]}") from None
    except yaml.YAMLError as e:
        raise ConfigError(source, f"not valid YAML: {_yaml_message(text, e)}") from None


def _yaml_message(text: str, error: yaml.YAMLError) -> str:
    """The first line of the error ``yaml.safe_load`` (what ``load_config`` uses) gives for ``text``."""
    if len(text) <= _EXACT_MESSAGE_CHARS:
        try:
            yaml.load(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as exact:
            error = exact
        except RecursionError:
            pass
    return str(error).splitlines()[0]


def _check_key(key: str, text: Any, errors: list[FieldError], warnings: list[str]) -> None:
    source = f"data[{key}]"
    if not isinstance(text, str):
        errors.append(invalid(source, text, "must be a string"))
        return
    try:
        config = parse_config(_decode(key, text, source), source=source)
    except ValueError as e:  # ConfigError and the plugins' own argument errors
        message = str(e)
        body = message[len(source) + 2:] if message.startswith(f"{source}: ") else message
        errors.append(FieldError("FieldValueInvalid", source, body))
        return
    warnings.extend(f"{source}: {w}" for w in config.warnings)


def validate_config_map(obj: Mapping[str, Any]) -> tuple[list[FieldError], list[str]]:
    """Field errors for every configuration in the ConfigMap's ``data`` that vecsched would refuse, and warnings."""
    data = obj.get("data")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return [invalid("data", data, "must be a map of strings")], []
    errors: list[FieldError] = []
    warnings: list[str] = []
    keys = [k for k in data if k.endswith(CONFIG_SUFFIXES)]
    for key in keys:
        _check_key(key, data[key], errors, warnings)
    if not keys:
        warnings.append(f"vecsched webhook: no data key ending in {', '.join(CONFIG_SUFFIXES)}: nothing validated "
                        f"(the ConfigMap is labelled {CONFIG_LABEL})")
    return errors, warnings
