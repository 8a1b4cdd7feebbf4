"""The input-hardening layer every reader goes through: limits, one-line errors, short quotes."""

from __future__ import annotations

import datetime
import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from scoring.safe_input import (INT64_MAX, INT64_MIN, MAX_DEPTH, InputError, check_tree, clip, loads_json,
                                loads_yaml_all, one_line, quote, read_text)


@pytest.mark.parametrize(("value", "expected"), [
    pytest.param("gold", "'gold'", id="short-string"),
    pytest.param("x" * 40, repr("x" * 40), id="string-at-the-limit"),
    # 41 characters: the first 40 quoted, the length counted.
    pytest.param("x" * 41, f"{'x' * 40!r}... (41 characters)", id="string-past-the-limit"),
    pytest.param("y" * 10_000_000, f"{'y' * 40!r}... (10,000,000 characters)", id="ten-megabytes"),
    pytest.param(2**63, "9223372036854775808", id="int-2^63"),
    # 10^200 has 665 bits: more than 4 * 40 = 160, so counted, not printed.
    pytest.param(10**200, "an integer of 665 bits", id="int-200-digits"),
    pytest.param(True, "True", id="bool"),
    pytest.param(None, "None", id="null"),
    pytest.param(1.5, "1.5", id="float"),
    pytest.param(["gold"], "['gold']", id="short-list"),
    pytest.param([], "[]", id="empty-list"),
    pytest.param({"a": 1}, "{'a': 1}", id="short-mapping"),
    # reprlib renders 8 items then "...": too long to show, so counted.
    pytest.param(list(range(100)), "a list of 100 items", id="long-list"),
    pytest.param({str(i): i for i in range(50)}, "a mapping of 50 keys", id="long-mapping"),
    # Five levels: reprlib stops at four, so the list is counted rather than rendered.
    pytest.param([[[[["deep"]]]]], "a list of 1 items", id="deep-list"),
    pytest.param(["x" * 100], "a list of 1 items", id="list-of-a-long-string"),
])
def test_quote(value: Any, expected: str) -> None:
    assert quote(value) == expected


@pytest.mark.parametrize(("text", "limit", "expected"), [
    pytest.param("short", 10, "short", id="fits"),
    pytest.param("a\nb\r\nc", 10, "a b c", id="line-breaks-become-spaces"),
    # 20 characters into 10: the first 5 and the last 5 around "...".
    pytest.param("abcdefghijklmnopqrst", 10, "abcde...pqrst", id="middle-cut"),
])
def test_one_line(text: str, limit: int, expected: str) -> None:
    assert one_line(text, limit) == expected


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param("first\nsecond", "first", id="first-line"),
    pytest.param("", "", id="empty"),
    pytest.param("z" * 200, "z" * 160 + "... (200 characters)", id="long-line"),
])
def test_clip(text: str, expected: str) -> None:
    assert clip(text) == expected


def _nested(depth: int) -> Any:
    """A list nested ``depth`` levels deep (the outermost is level 1), built without recursion."""
    doc: Any = "leaf"
    for _ in range(depth):
        doc = [doc]
    return doc


@pytest.mark.parametrize("doc", [
    pytest.param({"a": [1, "x", None, True, 1.5, {"b": {}}]}, id="every-json-type"),
    pytest.param({"n": INT64_MAX, "m": INT64_MIN}, id="int64-edges"),
    pytest.param(_nested(MAX_DEPTH), id="exactly-max-depth"),
])
def test_check_tree_accepts(doc: Any) -> None:
    check_tree(doc)


@pytest.mark.parametrize(("doc", "path", "problem"), [
    # 101 lists: the 101st is at depth index 100, where the limit is met; its path of 100 "[0]"
    # (300 characters) is cut to its first and last 100.
    pytest.param(_nested(MAX_DEPTH + 1), "[0]" * 33 + "...", "nested deeper than 100 levels", id="depth-101"),
    pytest.param(_nested(100_000), "[0]" * 33 + "...", "nested deeper than 100 levels", id="depth-100000"),
    pytest.param({"a": {1: "x"}}, "a", "key 1 is not a string", id="integer-key"),
    pytest.param({"a": {None: "x"}}, "a", "key None is not a string", id="null-key"),
    pytest.param({"w": INT64_MAX + 1}, "w", "9223372036854775808 is out of int64 range", id="2^63"),
    pytest.param({"w": INT64_MIN - 1}, "w", "-9223372036854775809 is out of int64 range", id="-2^63-1"),
    pytest.param({"w": [0, 10**400]}, "w[1]", "an integer of 1,329 bits is out of int64 range", id="huge"),
    pytest.param({"f": math.nan}, "f", "nan is not a finite number", id="nan"),
    pytest.param({"f": -math.inf}, "f", "-inf is not a finite number", id="minus-inf"),
    pytest.param({"t": datetime.date(2026, 1, 1)}, "t", "datetime.date(2026, 1, 1) is a date, not a JSON value",
                 id="yaml-date"),
    pytest.param({"b": b"\x00"}, "b", "b'\\x00' is a bytes, not a JSON value", id="yaml-binary"),
    pytest.param({"k" * 500: {1: 2}}, "k" * 40 + "...", "key 1 is not a string", id="long-key-in-path"),
])
def test_check_tree_refuses(doc: Any, path: str, problem: str) -> None:
    with pytest.raises(InputError) as e:
        check_tree(doc)
    if path.endswith("..."):  # the path is cut: its start is what is compared
        assert e.value.path.startswith(path[:-3]), e.value.path
    else:
        assert e.value.path == path
    assert e.value.problem == problem
    assert "\n" not in str(e.value) and len(str(e.value)) <= 300


def test_check_tree_without_values_checks_only_nesting() -> None:
    check_tree({1: 2**70, "f": math.nan}, values=False)
    with pytest.raises(InputError, match="nested deeper than 100 levels"):
        check_tree(_nested(101), values=False)


@pytest.mark.parametrize(("data", "kwargs", "error", "message"), [
    pytest.param("[" * 100_000 + "]" * 100_000, {}, InputError, "nested deeper than 100 levels", id="deep-array"),
    pytest.param('{"a":' * 100_000 + "1" + "}" * 100_000, {}, InputError, "nested deeper than 100 levels",
                 id="deep-object"),
    pytest.param('{"a": NaN}', {}, InputError, "NaN is not a number JSON allows", id="nan"),
    pytest.param('{"a": -Infinity}', {}, InputError, "-Infinity is not a number JSON allows", id="minus-infinity"),
    pytest.param('{"a": 9223372036854775808}', {}, InputError, "a: 9223372036854775808 is out of int64 range",
                 id="2^63"),
    pytest.param('{"a": ' + "9" * 5000 + "}", {}, InputError, "a number too long to read", id="5000-digits"),
    # 11 bytes against a limit of 10.
    pytest.param('{"a": "bc"}', {"max_bytes": 10}, InputError, "larger than 10 bytes (11 bytes)", id="size"),
    pytest.param('{"a": ', {}, json.JSONDecodeError, "Expecting value", id="truncated"),
    pytest.param(b'{"a": "\xff"}', {}, UnicodeDecodeError, "can't decode byte 0xff", id="not-utf-8"),
])
def test_loads_json_refuses(data: str | bytes, kwargs: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error) as e:
        loads_json(data, **kwargs)
    assert isinstance(e.value, ValueError)
    assert message in str(e.value)


def test_loads_json_reads_what_the_api_would() -> None:
    assert loads_json('{"a": [1, 2.5, "x", null, true], "b": -9223372036854775808}') == {
        "a": [1, 2.5, "x", None, True], "b": INT64_MIN}


BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n" for i in range(6))
"""Seven levels of ten: 60 aliases, expanding to 10^7 values."""


@pytest.mark.parametrize(("text", "error", "message"), [
    pytest.param("a: " + "[" * 150 + "]" * 150, InputError, "nested deeper than 100 levels", id="deep-flow"),
    # libyaml's scanner refuses 1,000 levels itself while reading ahead; the message is the same.
    pytest.param("a: " + "[" * 100_000 + "]" * 100_000, InputError, "nested deeper than 100 levels", id="very-deep"),
    pytest.param("".join(f"{'  ' * i}k:\n" for i in range(120)), InputError, "nested deeper than 100 levels",
                 id="deep-block"),
    pytest.param("a: &a x\n" + "".join(f"b{i}: *a\n" for i in range(101)), InputError, "more than 100 YAML aliases",
                 id="101-aliases"),
    pytest.param(BOMB, InputError, "YAML aliases expand to more than 1,000,000 values", id="alias-bomb"),
    pytest.param("requests: {1: 2}\n", InputError, "requests: key 1 is not a string", id="integer-key"),
    pytest.param("labels: {yes: x}\n", InputError, "labels: key True is not a string", id="boolean-key"),
    pytest.param("t: 2026-01-01\n", InputError, "is a date, not a JSON value", id="timestamp"),
    pytest.param("w: 9223372036854775808\n", InputError, "w: 9223372036854775808 is out of int64 range", id="2^63"),
    pytest.param("f: .nan\n", InputError, "f: nan is not a finite number", id="nan"),
    pytest.param("a: [1,\n", yaml.YAMLError, "", id="truncated"),
])
def test_loads_yaml_all_refuses(text: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error) as e:
        loads_yaml_all(text)
    assert message in str(e.value)


def test_loads_yaml_all_reads_documents_and_skips_empty_ones() -> None:
    # Anchors are fine when few: 1 alias here.
    assert loads_yaml_all("a: &x {b: 1}\nc: *x\n---\n---\nd: [1, 2]\n") == [{"a": {"b": 1}, "c": {"b": 1}},
                                                                         {"d": [1, 2]}]


@pytest.mark.parametrize(("content", "max_bytes", "error", "message"), [
    pytest.param(b"x" * 11, 10, InputError, "larger than 10 bytes (11 bytes)", id="too-large"),
    pytest.param(b"ok \xff", 10, InputError, "not UTF-8 text (byte 3)", id="not-utf-8"),
])
def test_read_text_refuses(tmp_path: Path, content: bytes, max_bytes: int, error: type[Exception],
                           message: str) -> None:
    path = tmp_path / "f"
    path.write_bytes(content)
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_text(path, max_bytes=max_bytes)


def test_read_text_reads_up_to_the_limit_and_reports_missing_files(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_text("x" * 10)
    assert read_text(path, max_bytes=10) == "x" * 10
    with pytest.raises(OSError):
        read_text(tmp_path / "missing", max_bytes=10)
