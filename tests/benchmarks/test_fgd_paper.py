"""``python -m benchmarks.fgd_paper`` sets the lab's figures beside the FGD paper's published ones.

The published side is parsed from the authors' ``analysis_*_discrete.csv`` layout (here
fabricated with hand-chosen numbers), the vecsched side must be exactly what the lab's sweep
gives, and the gap arithmetic must name the right figure. Inputs are tiny openb-format files in
``tmp_path``: nothing here reads the downloaded trace.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from benchmarks.fgd_paper import Cell, ListResult, format_report, gaps, largest_gap, main, mean_abs_gap, ours_from_records
from benchmarks.paper_results import PaperInputError, Stat, read_published, stat
from benchmarks.sim.report import summarise
from benchmarks.sim.sweep import SweepOptions, run_sweep, seed_pods
from benchmarks.strategies import resolve_strategies

HEADER = "workload,sc_policy,tune,seed,total_gpus,0,1,100,129,130\n"
# Four nodes of two V100s and 12 CPUs: 8 GPUs, 8,000 milli-GPU; CPU is tight enough that not
# every GPU can be allocated.
NODES = "sn,cpu_milli,memory_mib,gpu,model\n" + "".join(
    f"n{i},12000,131072,2,V100\n" for i in range(4))
# 20 pods: 8 half GPUs, 3 whole, 1 pair, 8 CPU-only (8x500 + 3x1000 + 2000 = 9,000 milli-GPU
# = 112.5% of capacity, so each seed clones pods until 130%, 10,400 milli-GPU, have arrived).
PODS = "name,cpu_milli,memory_mib,num_gpu,gpu_milli\n" + "".join(
    [f"h{i},4000,8192,1,500\n" for i in range(8)] + [f"w{i},6000,16384,1,1000\n" for i in range(3)]
    + ["d0,8000,32768,2,1000\n"] + [f"c{i},2000,4096,0,0\n" for i in range(8)])


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# ---- the published side ---------------------------------------------------------------------


@pytest.mark.parametrize(("rows", "key", "level", "expected"), [
    # seeds 42, 43 at 100%: 95.0, 96.0 -> mean 95.5, population std |96 - 95.5| = 0.5
    pytest.param(["openb_pod_list_default,06-FGD,1.3,42,6212,0,1,95.0,95,95",
                  "openb_pod_list_default,06-FGD,1.3,43,6212,0,1,96.0,96,96"],
                 ("default", "FGD"), 100, Stat(95.5, 0.5, 2), id="two-seeds"),
    # 90, 91, 95 -> mean 92; deviations -2, -1, 3 -> std sqrt((4 + 1 + 9) / 3) = sqrt(14/3) = 2.1602
    pytest.param(["openb_pod_list_cpu250,05-BestFit,1.3,42,6212,0,1,1,1,90",
                  "openb_pod_list_cpu250,05-BestFit,1.3,43,6212,0,1,1,1,91",
                  "openb_pod_list_cpu250,05-BestFit,1.3,44,6212,0,1,1,1,95"],
                 ("cpu250", "BestFit"), 130, Stat(92.0, math.sqrt(14 / 3), 3), id="three-seeds"),
    # an empty cell (no sample near 130%) leaves seed 43 out: 88.0 alone, std 0, n 1
    pytest.param(["openb_pod_list_default,01-Random,1.3,42,6212,0,1,80,88,88.0",
                  "openb_pod_list_default,01-Random,1.3,43,6212,0,1,80,88,"],
                 ("default", "Random"), 130, Stat(88.0, 0.0, 1), id="empty-cell"),
    # a row of another inflation (tune 1.0) is another experiment: only seed 42's 70 counts
    pytest.param(["openb_pod_list_default,02-DotProd,1.3,42,6212,0,1,70,70,70",
                  "openb_pod_list_default,02-DotProd,1.0,43,6212,0,1,99,99,99"],
                 ("default", "DotProduct"), 100, Stat(70.0, 0.0, 1), id="other-tune"),
    # a workload without the openb_pod_list_ prefix is taken as the list name itself
    pytest.param(["mine,04-GpuPacking,1.30,7,6212,0,1,50.25,60,60"],
                 ("mine", "GpuPacking"), 100, Stat(50.25, 0.0, 1), id="bare-name"),
])
def test_read_published_and_stats(tmp_path: Path, rows: list[str], key: tuple[str, str], level: int,
                                  expected: Stat) -> None:
    pub = read_published(_write(tmp_path / "a.csv", HEADER + "\n".join(rows) + "\n"))
    got = stat(pub.values[key][level])
    assert got is not None
    assert (got.mean, got.std, got.n) == pytest.approx((expected.mean, expected.std, expected.n))
    assert pub.gpus[key[0]] == {6212}


@pytest.mark.parametrize(("text", "message"), [
    pytest.param(HEADER + "openb_pod_list_default,06-FGD,1.3,42,6212,0,1,9x,1,1\n",
                 "a.csv:2: column 100: expected a number, got '9x'", id="not-a-number"),
    pytest.param(HEADER + "openb_pod_list_default,07-Mine,1.3,42,6212,0,1,1,1,1\n",
                 "a.csv:2: column sc_policy: unknown policy '07-Mine'", id="unknown-policy"),
    pytest.param("workload,sc_policy,tune,seed,0,100\nx,06-FGD,1.3,42,0,1\n",
                 "a.csv:1: column 130: missing", id="missing-column"),
    pytest.param(HEADER + "openb_pod_list_default,06-FGD,1.3,42,6212,0,1\n",
                 "a.csv:2: expected 10 fields, got 7", id="short-row"),
    pytest.param(HEADER + "d,06-FGD,1.3,42,6212,0,1,1,1,1\nd,06-FGD,1.3,42,6212,0,1,1,1,1\n",
                 "a.csv:3: column seed: a second row for d 06-FGD seed 42 (the first is line 2)", id="duplicate"),
    pytest.param(HEADER + "d,06-FGD,1.3,42,6212,0,1,1,1,130.5\n",
                 "a.csv:2: column 130: expected a percentage 0..100, got '130.5'", id="out-of-range"),
    pytest.param(HEADER + "d,06-FGD,1.3,4.5,6212,0,1,1,1,1\n",
                 "a.csv:2: column seed: expected an integer, got '4.5'", id="fractional-seed"),
    pytest.param(HEADER + "d,06-FGD,1.3,42,6212,0,1,inf,1,1\n",
                 "a.csv:2: column 100: expected a finite number, got 'inf'", id="infinite"),
    pytest.param("", "a.csv:1: empty file", id="empty"),
])
def test_read_published_names_file_line_and_column(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(PaperInputError) as e:
        read_published(_write(tmp_path / "a.csv", text))
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def _record(strategy: str, alloc: dict[str, float], frag: dict[str, float]) -> dict[str, object]:
    return {"strategy": strategy, "alloc_curve": {"gpu": alloc}, "frag_curve": {"gpu": frag}}


@pytest.mark.parametrize(("records", "expected"), [
    # two seeds: alloc@100 90, 92 -> 91 ± 1; alloc@130 93, 95 -> 94 ± 1;
    # frag@100 8, 6 -> 7 ± 1; frag@130 5, 5 -> 5 ± 0
    pytest.param([_record("FGD", {"100": 90.0, "130": 93.0}, {"100": 8.0, "130": 5.0}),
                  _record("FGD", {"100": 92.0, "130": 95.0}, {"100": 6.0, "130": 5.0})],
                 {("alloc", 100): (91.0, 1.0, 2), ("alloc", 130): (94.0, 1.0, 2),
                  ("frag", 100): (7.0, 1.0, 2), ("frag", 130): (5.0, 0.0, 2)}, id="two-seeds"),
    # a run whose arrived request never reached 130% is left out there: alloc@130 is seed 0's 93 alone;
    # another strategy's record (BestFit's 50s) is not mixed in
    pytest.param([_record("FGD", {"100": 90.0, "130": 93.0}, {"100": 8.0, "130": 5.0}),
                  _record("FGD", {"100": 92.0}, {"100": 6.0}),
                  _record("BestFit", {"100": 50.0, "130": 50.0}, {"100": 50.0, "130": 50.0})],
                 {("alloc", 100): (91.0, 1.0, 2), ("alloc", 130): (93.0, 0.0, 1),
                  ("frag", 100): (7.0, 1.0, 2), ("frag", 130): (5.0, 0.0, 1)}, id="short-run"),
    # a run without a frag curve (no GPU measure): frag has no value at all
    pytest.param([{"strategy": "FGD", "alloc_curve": {"gpu": {"100": 80.0, "130": 81.0}}}],
                 {("alloc", 100): (80.0, 0.0, 1), ("alloc", 130): (81.0, 0.0, 1),
                  ("frag", 100): None, ("frag", 130): None}, id="no-frag"),
])
def test_ours_from_records(records: list[dict[str, object]],
                           expected: dict[tuple[str, int], tuple[float, float, int] | None]) -> None:
    got = ours_from_records(records, policies=["FGD"])["FGD"]
    for (m, k), want in expected.items():
        s = got[m][k]
        if want is None:
            assert s is None
        else:
            assert s is not None and (s.mean, s.std, s.n) == pytest.approx(want)


# ---- the gap arithmetic ------------------------------------------------------------------------


def _result(name: str, figures: dict[tuple[str, str, int], tuple[float, float | None]]) -> ListResult:
    """A ListResult from (policy, measure, level) -> (vecsched mean, published mean or None)."""
    cells: dict[str, dict[str, dict[int, Cell]]] = {}
    for (pol, m, k), (ours, pub) in figures.items():
        cells.setdefault(pol, {}).setdefault(m, {})[k] = Cell(
            ours=Stat(ours, 0.1, 10), published=None if pub is None else Stat(pub, 0.2, 10))
    return ListResult(name=name, pods=10, nodes=4, gpus=8, seeds=10, cells=cells,
                      published_seeds=[42, 51] if any(p is not None for _, p in figures.values()) else [])


@pytest.mark.parametrize(("results", "largest", "mean_abs", "count"), [
    # diffs: 95.2 - 95.4 = -0.2, 4.7 - 3.5 = +1.2, 93.1 - 93.1 = 0 -> largest |+1.2| (FGD frag @130);
    # mean |.| = (0.2 + 1.2 + 0) / 3 = 0.4667
    pytest.param([_result("default", {("FGD", "alloc", 130): (95.2, 95.4), ("FGD", "frag", 130): (4.7, 3.5),
                                      ("BestFit", "alloc", 130): (93.1, 93.1)})],
                 ("default", "FGD", "frag", 130, 1.2), 1.4 / 3, 3, id="one-list"),
    # a negative gap wins by its size: 91.4 - 93.4 = -2.0 against +1.5 (87.7 - 86.2); mean (2 + 1.5) / 2 = 1.75
    pytest.param([_result("default", {("Random", "alloc", 100): (87.7, 86.2)}),
                  _result("cpu250", {("FGD", "alloc", 130): (91.4, 93.4)})],
                 ("cpu250", "FGD", "alloc", 130, -2.0), 1.75, 2, id="negative-wins"),
    # equal sizes |+1.0| and |-1.0|: the first in list order is kept; mean 1.0
    pytest.param([_result("a", {("FGD", "alloc", 100): (91.0, 90.0)}),
                  _result("b", {("FGD", "alloc", 100): (89.0, 90.0)})],
                 ("a", "FGD", "alloc", 100, 1.0), 1.0, 2, id="tie-first"),
    # a list without published results adds nothing: only gpushare100's 0.5 (92.0 - 91.5) counts
    pytest.param([_result("cpu0", {("FGD", "alloc", 130): (99.0, None)}),
                  _result("gpushare100", {("BestFit", "frag", 100): (92.0, 91.5)})],
                 ("gpushare100", "BestFit", "frag", 100, 0.5), 0.5, 1, id="unpublished-list"),
    # nothing published anywhere: no largest gap, no mean
    pytest.param([_result("cpu0", {("FGD", "alloc", 130): (99.0, None)})], None, None, 0, id="nothing"),
])
def test_gaps(results: list[ListResult], largest: tuple[str, str, str, int, float] | None,
              mean_abs: float | None, count: int) -> None:
    found = gaps(results)
    assert len(found) == count
    g = largest_gap(found)
    if largest is None:
        assert g is None and mean_abs_gap(found) is None
        assert format_report(results).endswith("nothing compared")
        return
    assert g is not None
    assert (g.list, g.policy, g.measure, g.level) == largest[:4]
    assert g.diff == pytest.approx(largest[4])
    assert mean_abs_gap(found) == pytest.approx(mean_abs)
    last = format_report(results).splitlines()[-1]
    assert last.startswith(f"largest gap: {largest[0]} {largest[1]} {largest[2]} @{largest[3]}%: ")
    assert f"diff {largest[4]:+.2f}; mean absolute gap {mean_abs:.2f} over {count} figures" in last


# ---- the command ---------------------------------------------------------------------------------


@pytest.mark.parametrize("setup", [
    pytest.param("none", id="no-directory"),
    pytest.param("empty", id="no-node-list"),
    pytest.param("nodes-only", id="no-pod-list"),
])
def test_missing_traces(tmp_path: Path, capsys: pytest.CaptureFixture[str], setup: str) -> None:
    traces = tmp_path / "traces"
    if setup != "none":
        traces.mkdir()
    if setup == "nodes-only":
        _write(traces / "openb_node_list_gpu_node.csv", NODES)
    assert main(["--traces", str(traces), "--out", str(tmp_path / "out")]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and "run `make openb` first, or pass --traces DIR" in err
    assert not (tmp_path / "out").exists()  # nothing ran


@pytest.mark.parametrize(("flags", "message"), [
    pytest.param(["--lists", "tiny,huge"], "--lists: no pod list 'huge' in ", id="unknown-list"),
    pytest.param(["--lists", "tiny,tiny"], "--lists: 'tiny' is listed twice", id="duplicate-list"),
    pytest.param(["--policies", "FGD,Tetris"], "--policies: unknown policy 'Tetris'", id="unknown-policy"),
    pytest.param(["--policies", "FGD,06-FGD"], "--policies: '06-FGD' names FGD a second time", id="alias-twice"),
    pytest.param(["--policies", " , "], "--policies: name at least one", id="no-policy"),
])
def test_bad_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str) -> None:
    traces = tmp_path / "traces"
    traces.mkdir()
    _write(traces / "openb_node_list_gpu_node.csv", NODES)
    _write(traces / "openb_pod_list_tiny.csv", PODS)
    assert main(["--traces", str(traces), "--out", str(tmp_path / "out"), *flags]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and message in err
    assert not (tmp_path / "out").exists()


def test_malformed_published_file_stops_before_any_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    traces = tmp_path / "traces"
    (traces / "expected_results").mkdir(parents=True)
    _write(traces / "openb_node_list_gpu_node.csv", NODES)
    _write(traces / "openb_pod_list_tiny.csv", PODS)
    _write(traces / "expected_results" / "analysis_frag_discrete.csv",
           HEADER + "openb_pod_list_tiny,06-FGD,1.3,42,8,0,1,ten,1,1\n")
    assert main(["--traces", str(traces), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    assert err.strip().endswith("analysis_frag_discrete.csv:2: column 100: expected a number, got 'ten'")
    assert not (tmp_path / "out").exists()


# Hand-chosen published figures for list "tiny" (levels 100 and 130):
#   FGD seeds 42, 43: alloc 80, 90 -> 85 ± 5 and 88, 92 -> 90 ± 2; frag 10, 14 -> 12 ± 2 and 6, 6 -> 6 ± 0
#   BestFit seed 42:  alloc 70 and 75; frag 20 and 18 (one seed: std 0)
ALLOC = HEADER + ("openb_pod_list_tiny,06-FGD,1.3,42,8,0,1,80,88,88\n"
                  "openb_pod_list_tiny,06-FGD,1.3,43,8,0,1,90,92,92\n"
                  "openb_pod_list_tiny,05-BestFit,1.3,42,8,0,1,70,75,75\n")
FRAG = "workload,sc_policy,tune,seed,0,1,100,129,130\n" + (
    "openb_pod_list_tiny,06-FGD,1.3,42,0,1,10,6,6\n"
    "openb_pod_list_tiny,06-FGD,1.3,43,0,1,14,6,6\n"
    "openb_pod_list_tiny,05-BestFit,1.3,42,0,1,20,18,18\n")
PUBLISHED = {("FGD", "alloc", "100"): (85.0, 5.0, 2), ("FGD", "alloc", "130"): (90.0, 2.0, 2),
             ("FGD", "frag", "100"): (12.0, 2.0, 2), ("FGD", "frag", "130"): (6.0, 0.0, 2),
             ("BestFit", "alloc", "100"): (70.0, 0.0, 1), ("BestFit", "alloc", "130"): (75.0, 0.0, 1),
             ("BestFit", "frag", "100"): (20.0, 0.0, 1), ("BestFit", "frag", "130"): (18.0, 0.0, 1)}


def test_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    traces = tmp_path / "traces"
    (traces / "expected_results").mkdir(parents=True)
    _write(traces / "openb_node_list_gpu_node.csv", NODES)
    _write(traces / "openb_pod_list_tiny.csv", PODS)
    _write(traces / "openb_pod_list_nopub.csv", PODS)  # same pods, no published rows
    _write(traces / "expected_results" / "analysis_allo_discrete.csv", ALLOC)
    _write(traces / "expected_results" / "analysis_frag_discrete.csv", FRAG)
    out_dir = tmp_path / "out"
    argv = ["--traces", str(traces), "--seeds", "2", "--policies", "FGD,05-BestFit", "--out", str(out_dir),
            "--jobs", "1", "--quiet"]
    assert main([*argv, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert list(doc["lists"]) == ["nopub", "tiny"]  # every list found, by name
    tiny, nopub = doc["lists"]["tiny"], doc["lists"]["nopub"]
    assert (tiny["pods"], tiny["nodes"], tiny["gpus"], tiny["seeds"]) == (20, 4, 8, 2)  # pods: the list, not its clones
    assert tiny["published"] and tiny["published_seeds"] == [42, 43] and tiny["published_gpus"] == [8]
    assert not nopub["published"]
    assert list(tiny["policies"]) == ["BestFit", "FGD"]  # the paper's order, not the flag's

    # The vecsched side is the lab's sweep of the same inputs, read at 100% and 130%.
    opts = SweepOptions(cluster=f"openb:{traces / 'openb_node_list_gpu_node.csv'}",
                        workload=f"openb:{traces / 'openb_pod_list_tiny.csv'}", inflate=1.3)
    _, pods = seed_pods(SweepOptions(cluster=opts.cluster, workload=opts.workload), 0)
    strategies = resolve_strategies(["BestFit", "FGD"], workload=[p.pod for p in pods])
    records = run_sweep(opts=opts, strategies=strategies, seeds=2, jobs=1, progress=False)
    lab = summarise(records, strategies=["BestFit", "FGD"], primary="gpu", levels=(100, 130))["strategies"]
    compared = []
    for pol in ("BestFit", "FGD"):
        for m, curve in (("alloc", "alloc_curve"), ("frag", "frag_curve")):
            for k in ("100", "130"):
                values = [r[curve]["gpu"][k] for r in records if r["strategy"] == pol]
                assert len(values) == 2  # both seeds reach 130% (the clones stop there)
                mean = sum(values) / 2
                for name in ("tiny", "nopub"):
                    cell = doc["lists"][name]["policies"][pol][m][k]
                    assert cell["vecsched"]["mean"] == pytest.approx(mean, abs=1e-4)
                    assert cell["vecsched"]["std"] == pytest.approx(abs(values[0] - values[1]) / 2, abs=1e-4)
                    assert cell["vecsched"]["mean"] == pytest.approx(lab[pol][f"{m}_at"]["gpu"][k]["mean"], abs=1e-4)
                unpublished = nopub["policies"][pol][m][k]
                assert unpublished["published"] is None and unpublished["diff"] is None
                cell = tiny["policies"][pol][m][k]
                pmean, pstd, pn = PUBLISHED[pol, m, k]
                assert (cell["published"]["mean"], cell["published"]["std"], cell["published"]["n"]) == \
                    pytest.approx((pmean, pstd, pn))
                assert cell["diff"] == pytest.approx(mean - pmean, abs=1e-3)
                compared.append((abs(mean - pmean), pol, m, k))
    assert doc["compared"] == 8  # 2 policies x 2 measures x 2 levels, on "tiny" only
    size, pol, m, k = max(compared, key=lambda c: c[0])
    assert (doc["largest_gap"]["list"], doc["largest_gap"]["policy"]) == ("tiny", pol)
    assert abs(doc["largest_gap"]["diff"]) == pytest.approx(size, abs=1e-3)
    assert doc["mean_abs_gap"] == pytest.approx(sum(c[0] for c in compared) / 8, abs=1e-3)
    assert Path(doc["plot"]).is_file() and Path(doc["plot"]).stat().st_size > 0
    assert (out_dir / "tiny" / "runs.jsonl").read_text().count("\n") == 4  # 2 policies x 2 seeds

    # The table form of the same run resumes from the runs files (no new line in them).
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert (out_dir / "tiny" / "runs.jsonl").read_text().count("\n") == 4
    assert text.startswith("nopub: 20 pods on 4 nodes (8 GPUs)")
    assert "no published results for this list" in text
    assert "tiny: 20 pods on 4 nodes (8 GPUs), arrived GPU request inflated to 130%; vecsched seeds 2, " \
           "published seeds 2 (42-43)" in text
    tiny_table = text[text.index("tiny: "):].splitlines()
    fgd_alloc = next(line for line in tiny_table if line.startswith("FGD ") and "alloc GPU %" in line)
    assert "85.00 ± 5.00" in fgd_alloc and "90.00 ± 2.00" in fgd_alloc
    assert text.splitlines()[-2].startswith(f"largest gap: tiny {pol} {m} @{k}%")
    assert text.splitlines()[-1].startswith("wrote ")
