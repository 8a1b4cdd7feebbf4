"""``vecsched demo --prometheus``: a real Prometheus beside the demo.

vecsched exports kube-scheduler's metrics, and its load plugins read node
utilisation from Prometheus; the demo shows both ends with the Prometheus
server the machine has (Debian's ``prometheus`` package, or any on PATH). It
scrapes the scheduler's ``/metrics`` as job ``vecsched-metrics`` and the
embedded control plane's simulated node-exporter (``/metrics/node-exporter``,
``honor_labels`` so each series keeps its node's ``instance``) as job
``node-exporter``, and loads deploy/monitoring's recording rules and alerts, so
``instance:node_cpu:ratio`` and the alerts work as in a cluster. Where the rule
files are not beside the code (an installed wheel), it scrapes
``/metrics/node-utilisation`` instead: the rules' outputs computed by the API
server. Its TSDB and log live in a temporary directory removed at the end.

Prometheus is an optional guest: when none is installed, or it does not start,
one line says so and the demo runs as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote, urlsplit

import aiohttp
import yaml

__all__ = ["SCRAPE_INTERVAL", "QUERIES", "DemoPrometheus", "terminate", "find_prometheus", "rule_files", "prometheus_config",
           "start_prometheus"]

SCRAPE_INTERVAL: Final = "5s"
"""Scrape and rule-evaluation interval: a demo lasts a minute or two, and ``rate(...[1m])``
then has a dozen samples."""
_READY_SECONDS: Final = 30.0
"""How long Prometheus may take to answer /-/ready (an empty TSDB: well under a second)."""
_RULES_DIR: Final = Path(__file__).resolve().parents[1] / "deploy" / "monitoring" / "rules"
QUERIES: Final = (
    "sum by (result) (rate(scheduler_schedule_attempts_total[1m]))",
    "histogram_quantile(0.99, sum by (le) (rate(scheduler_scheduling_attempt_duration_seconds_bucket[1m])))",
    "sum by (queue) (scheduler_pending_pods)",
    "topk(5, instance:node_cpu:ratio)",
    "ALERTS",
)
"""PromQL to try on the demo's Prometheus: decisions per second by result, p99 attempt latency,
pending pods by queue, the busiest nodes by measured CPU, the alerts pending or firing."""


def find_prometheus(*, path: str | None = None, debian: Path = Path("/usr/bin/prometheus")) -> str | None:
    """The Prometheus server binary: ``prometheus`` on ``path`` (default: PATH), else Debian's."""
    found = shutil.which("prometheus", path=path)
    if found:
        return found
    return str(debian) if debian.is_file() else None


def rule_files() -> list[Path]:
    """deploy/monitoring's rule files when the source tree is beside the code; else none."""
    files = [_RULES_DIR / "recording-rules.yaml", _RULES_DIR / "alerts.yaml"]
    return files if all(f.is_file() for f in files) else []


def prometheus_config(*, scheduler: str, apiserver: str, rules: list[Path]) -> dict[str, Any]:
    """prometheus.yml: ``scheduler`` and ``apiserver`` are base URLs (``http://host:port``). With
    ``rules`` the node-exporter series are scraped raw for the recording rules; without, their
    outputs as the API server computes them."""
    def job(name: str, base: str, path: str, *, honor_labels: bool = False) -> dict[str, Any]:
        u = urlsplit(base)
        return {"job_name": name, "scheme": u.scheme, "metrics_path": path, "honor_labels": honor_labels,
                "static_configs": [{"targets": [u.netloc]}]}
    nodes = "/metrics/node-exporter" if rules else "/metrics/node-utilisation"
    return {"global": {"scrape_interval": SCRAPE_INTERVAL, "scrape_timeout": SCRAPE_INTERVAL,
                       "evaluation_interval": SCRAPE_INTERVAL},
            "rule_files": [str(r) for r in rules],
            "scrape_configs": [job("vecsched-metrics", scheduler, "/metrics"),
                               job("node-exporter", apiserver, nodes, honor_labels=True)]}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class DemoPrometheus:
    """A running Prometheus; ``url`` is its base URL."""

    url: str
    rules: bool
    """Whether deploy/monitoring's rules are loaded."""
    _proc: asyncio.subprocess.Process
    _dir: Path

    def started_line(self) -> str:
        what = "with deploy/monitoring's recording rules and alerts" if self.rules else \
            "(the recording rules' outputs from the API server: deploy/monitoring is not beside the code)"
        return (f"Prometheus {self.url} (pid {self._proc.pid}) scraping the scheduler and the simulated "
                f"node-exporter every {SCRAPE_INTERVAL}, {what}")

    def queries(self, *, keep_running: bool) -> str:
        """The lines the summary ends with: where Prometheus is and PromQL to try there."""
        when = "" if keep_running else " (use --keep-running to look)"
        lines = [f"Prometheus was at {self.url}{when}; PromQL to try in its graph page:"]
        lines += [f"  {q}" for q in QUERIES]
        lines.append(f"  curl -s '{self.url}/api/v1/query?query={quote(QUERIES[0])}'")
        return "\n".join(lines)

    def log_tail(self, lines: int = 3) -> str:
        try:
            return " | ".join((self._dir / "prometheus.log").read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    async def stop(self) -> None:
        """Terminate Prometheus and remove its directory. Idempotent."""
        await terminate(self._proc)
        shutil.rmtree(self._dir, ignore_errors=True)


async def terminate(proc: asyncio.subprocess.Process, *, grace: float = 10.0) -> None:
    """SIGTERM ``proc`` and wait for it, SIGKILL after ``grace`` seconds; nothing if it has exited."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), grace)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()


async def _ready(url: str, proc: asyncio.subprocess.Process) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _READY_SECONDS
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
        while loop.time() < deadline and proc.returncode is None:
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                async with http.get(f"{url}/-/ready") as r:
                    if r.status == 200:
                        return True
            await asyncio.sleep(0.2)
    return False


async def start_prometheus(*, binary: str | None, scheduler: str, apiserver: str) -> DemoPrometheus | str:
    """Start Prometheus (``binary``, None when there is none) scraping ``scheduler`` and
    ``apiserver`` (base URLs) and wait until it is ready; on failure, the one line to print
    instead (the demo goes on without it)."""
    if binary is None:
        return ("--prometheus: no prometheus on PATH or at /usr/bin/prometheus (Debian: apt-get install "
                "--no-install-recommends prometheus); the demo runs without it")
    rules = rule_files()
    tmp = Path(tempfile.mkdtemp(prefix="vecsched-demo-prometheus-"))
    conf = tmp / "prometheus.yml"
    conf.write_text(yaml.safe_dump(prometheus_config(scheduler=scheduler, apiserver=apiserver, rules=rules),
                                   sort_keys=False))
    port = _free_port()
    with (tmp / "prometheus.log").open("ab") as log:
        proc = await asyncio.create_subprocess_exec(
            binary, f"--config.file={conf}", f"--storage.tsdb.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}", stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log)
    prom = DemoPrometheus(url=f"http://127.0.0.1:{port}", rules=bool(rules), _proc=proc, _dir=tmp)
    if await _ready(prom.url, proc):
        return prom
    tail = prom.log_tail()
    await prom.stop()
    return f"--prometheus: {binary} did not become ready on {prom.url} ({tail}); the demo runs without it"
