"""/validate-config: a ConfigMap labelled vecsched.io/config is refused with exactly the errors
`vecsched run --config` prints for the same text (the file's path replaced by data[<key>]), as a
422 with one field error per bad key; the configuration's own warnings are passed on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from scheduler.apiserver import ApiServer
from scheduler.config import ConfigError, load_config
from tests.webhook.support import Pki, post, response_of, review, webhook

DEPLOY_CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "config.yaml"
HEAD = "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n"

UNKNOWN_PLUGIN = HEAD + "profiles:\n- schedulerName: a\n  plugins:\n    score:\n      enabled:\n      - name: Foo\n"
ZERO_WEIGHT = HEAD + ("profiles:\n- schedulerName: a\n  plugins:\n    score:\n      enabled:\n"
                      "      - name: ImageLocality\n        weight: 0\n")
DUPLICATE = HEAD + "profiles:\n- schedulerName: a\n- schedulerName: a\n"
BAD_ARGS = HEAD + ("profiles:\n- schedulerName: a\n  pluginConfig:\n  - name: NodeResourcesFit\n    args:\n"
                   "      scoringStrategy:\n        type: Cheapest\n")
WRONG_VERSION = "apiVersion: kubescheduler.config.k8s.io/v1beta3\nkind: KubeSchedulerConfiguration\n"
NOT_YAML = HEAD + "profiles: [schedulerName: a\n"
NOT_JSON = '{"apiVersion": "kubescheduler.config.k8s.io/v1",'
UNUSED = HEAD + "parallelism: 16\n"
# 10 levels of 10 aliases each: 10**10 nodes once expanded, a few hundred bytes of text
LAUGHS = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 10)) + "apiVersion: *a9\n"
DEEP = "[" * 300 + "]" * 300


def _run_says(key: str, text: str, tmp: Path) -> str:
    """What `vecsched run --config <key>` prints for ``text``, with the path replaced by data[<key>]."""
    path = tmp / key
    path.write_text(text)
    try:
        load_config(path)
    except ConfigError as e:
        return str(e).replace(str(path), f"data[{key}]")
    raise AssertionError(f"{key} loads")


def configmap(data: Any, *, labelled: bool = True) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "vecsched-config", "namespace": "vecsched"}
    if labelled:
        meta["labels"] = {"vecsched.io/config": ""}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


async def test_config_errors_as_vecsched_run_gives_them(apiserver: ApiServer, pki: Pki, http: aiohttp.ClientSession,
                                                        tmp_path: Path) -> None:
    ctx = pki.client_context()
    cases: list[tuple[str, dict[str, Any]]] = [
        ("unknown plugin", {"config.yaml": UNKNOWN_PLUGIN}),
        ("weight 0", {"config.yaml": ZERO_WEIGHT}),
        ("duplicate profile", {"config.yaml": DUPLICATE}),
        ("bad plugin args", {"config.yaml": BAD_ARGS}),
        ("older apiVersion", {"config.yml": WRONG_VERSION}),
        ("not YAML", {"config.yaml": NOT_YAML}),
        ("not JSON", {"config.json": NOT_JSON}),
        ("two bad keys, one good, one ignored", {"a.yaml": UNKNOWN_PLUGIN, "b.yaml": HEAD, "c.json": NOT_JSON,
                                                 "README.md": "not a config"}),
    ]
    async with webhook(pki, apiserver) as wh:
        for case_id, data in cases:
            expected = {k: _run_says(k, v, tmp_path) for k, v in data.items()
                        if k.endswith((".yaml", ".yml", ".json")) and v != HEAD}
            sent = review(configmap(data), kind="ConfigMap", namespace="vecsched")
            resp = response_of(*await post(http, f"{wh.url}/validate-config", sent, ctx=ctx), sent)
            assert resp["allowed"] is False, case_id
            status = resp["status"]
            assert status["code"] == 422 and status["reason"] == "Invalid", case_id
            texts = list(expected.values())
            agg = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
            assert status["message"] == f'ConfigMap "vecsched-config" is invalid: {agg}', case_id
            assert [f"{c['field']}: {c['message']}" for c in status["details"]["causes"]] == texts, case_id
            assert [c["field"] for c in status["details"]["causes"]] == [f"data[{k}]" for k in expected], case_id
            assert status["details"]["kind"] == "ConfigMap" and status["details"]["group"] == "", case_id


async def test_good_configs_and_what_is_not_checked(apiserver: ApiServer, pki: Pki, http: aiohttp.ClientSession) -> None:
    ctx = pki.client_context()
    shipped = yaml.safe_load(DEPLOY_CONFIG.read_text())  # deploy/'s own ConfigMap, labelled
    shipped["metadata"]["labels"]["vecsched.io/config"] = ""
    cases: list[tuple[str, dict[str, Any], list[str]]] = [
        ("the shipped configuration", shipped, []),
        ("a field vecsched accepts but does not use", configmap({"config.yaml": UNUSED}),
         ["data[config.yaml]: parallelism: accepted but not used by vecsched"]),
        ("no configuration key", configmap({"notes.txt": "x"}),
         ["vecsched webhook: no data key ending in .yaml, .yml, .json: nothing validated (the ConfigMap is "
          "labelled vecsched.io/config)"]),
        ("not labelled: not ours", configmap({"config.yaml": NOT_YAML}, labelled=False), []),
    ]
    async with webhook(pki, apiserver) as wh:
        for case_id, obj, warnings in cases:
            for operation in ("CREATE", "UPDATE"):
                sent = review(obj, kind="ConfigMap", namespace="vecsched", operation=operation)
                resp = response_of(*await post(http, f"{wh.url}/validate-config", sent, ctx=ctx), sent)
                assert resp["allowed"] is True, (case_id, resp)
                assert resp.get("warnings", []) == warnings, case_id
        sent = review(None, kind="ConfigMap", namespace="vecsched", operation="DELETE", name="x",
                      old=configmap({"config.yaml": NOT_YAML}))
        resp = response_of(*await post(http, f"{wh.url}/validate-config", sent, ctx=ctx), sent)
        assert resp == {"uid": sent["request"]["uid"], "allowed": True}


async def test_hostile_configurations(apiserver: ApiServer, pki: Pki, http: aiohttp.ClientSession) -> None:
    """Aliases expanding to 10**10 nodes, nesting 300 deep and a recursive alias are refused, quickly,
    as field errors; so is a value that is not a string."""
    ctx = pki.client_context()
    cases = [
        (LAUGHS, "data[config.yaml]: expands to more than 100000 YAML nodes (through aliases)"),
        (DEEP, "data[config.yaml]: nests deeper than 200 levels"),
        ("a: &a [*a]\n", "data[config.yaml]: has a recursive alias"),
        (7, "data[config.yaml]: Invalid value: 7: must be a string"),
    ]
    async with webhook(pki, apiserver) as wh:
        for text, message in cases:
            sent = review(configmap({"config.yaml": text}), kind="ConfigMap", namespace="vecsched")
            resp = response_of(*await post(http, f"{wh.url}/validate-config", sent, ctx=ctx), sent)
            assert resp["allowed"] is False
            assert resp["status"]["message"] == f'ConfigMap "vecsched-config" is invalid: {message}'


def test_the_run_command_prints_the_same(tmp_path: Path) -> None:
    """The reference itself: `vecsched run --config` (which stops at the configuration, before any
    API access) prints `vecsched run: <path>: <what the webhook says after data[<key>]: >`."""
    path = tmp_path / "config.yaml"
    path.write_text(UNKNOWN_PLUGIN)
    r = subprocess.run([sys.executable, "-m", "scheduler.cli", "run", "--config", str(path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip() == "vecsched run: " + _run_says("config.yaml", UNKNOWN_PLUGIN, tmp_path).replace(
        "data[config.yaml]", str(path))
