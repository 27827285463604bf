"""`azdsl lineage`: the best program's ancestry rebuilt from a real run folder, its jumps and
diffs, its JSON document; the run folder's formats, read with json and pandas."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from support import SEARCH_TASKS, budget, components, held_out_tasks, population

from azdsl.cli import main
from azdsl.language.parse import parse
from azdsl.language.printer import unparse
from azdsl.language.simplify import simplify
from azdsl.search.journey import SHORT
from azdsl.search.lineage import ID_SHIFT, Ancestry

CONFIG = (SEARCH_TASKS + held_out_tasks(4) + components(4, 2, 4) + population(30, 5)
          + budget(800, 2, 200))


def _evolve(tmp: Path, name: str, *extra: str, seed: int = 4) -> Path:
    (tmp / "exp.toml").write_text(CONFIG)
    out = tmp / name
    assert main(["evolve", str(tmp / "exp.toml"), "--out", str(out), "--seed", str(seed),
                 "--quiet", *extra]) == 0
    return out


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _evolve(tmp_path_factory.mktemp("lineage"), "run", "--islands", "1")


def _lineage(out: Path, *args: str, capsys: pytest.CaptureFixture[str]) -> Any:
    capsys.readouterr()
    assert main(["lineage", str(out), "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def _stored(out: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    return (json.loads((out / "lineage.json").read_text()),
            json.loads((out / "report.json").read_text()))


def test_json_rebuilds_every_experiment_to_its_best(run: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    lineage, report = _stored(run)
    for number in (1, 2):
        doc = _lineage(run, "--experiment", str(number), capsys=capsys)
        stored = lineage["experiments"][number - 1]
        assert (doc["format"], doc["version"], doc["experiment"]) == ("azdsl-journey", 1,
                                                                       number)
        assert doc["note"] is None and doc["rebuilt"] == len(stored["steps"])
        # the replayed chain ends at the program the search reported for the experiment
        assert doc["best"] == report["experiments"][number - 1]["simplified"]
        assert doc["first"] == unparse(simplify(parse(stored["first"])))
        assert [s["fitness"] for s in doc["steps"]] == [s[7] for s in stored["steps"]]
        assert [s["mutation"] for s in doc["steps"]] == [s[2] for s in stored["steps"]]
        ancestry = Ancestry.from_json(stored["steps"], "steps")
        assert [j["step"] for j in doc["jumps"]] == ancestry.improvements()
        fitness = [j["fitness"] for j in doc["jumps"]]
        assert fitness == sorted(set(fitness))  # strictly rising
        assert doc["jumps"][0]["diff"] is None  # the first program has no parent
        for jump in doc["jumps"][1:]:
            assert jump["diff"], "a rise in fitness changes the live code"
            assert all(line[:2] in ("+ ", "- ") for part in jump["diff"].values()
                       for line in part)
            assert jump["label"].startswith(SHORT[jump["mutation"]] + " ")


def test_default_is_the_chosen_experiment_and_text_shows_diffs(
        run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lineage, report = _stored(run)
    chosen = [e["experiment"] for e in lineage["experiments"]
              if e["program"] == (run / "best.az").read_text()][-1]
    assert _lineage(run, capsys=capsys)["experiment"] == chosen
    assert main(["lineage", str(run)]) == 0
    text = capsys.readouterr().out
    assert f"experiment {chosen} of 2 (the chosen program's)" in text
    best = text.split("the best program (simplified):\n")[1]
    assert best == report["experiments"][chosen - 1]["simplified"]
    jumps = _lineage(run, capsys=capsys)["jumps"]
    assert text.count("\njump ") == len(jumps)
    for jump in jumps[1:]:
        for component, lines in jump["diff"].items():
            assert f"  {component}: {lines[0]}\n" in text


def test_min_gain_keeps_only_larger_rises(run: Path, capsys: pytest.CaptureFixture[str]
                                          ) -> None:
    every = _lineage(run, capsys=capsys)["jumps"]
    gain = sorted(j["gain"] for j in every[1:])[len(every) // 2]
    fewer = _lineage(run, "--min-gain", str(gain), capsys=capsys)["jumps"]
    assert 1 <= len(fewer) < len(every)
    assert all(j["gain"] > gain for j in fewer[1:])


def test_a_chain_that_cannot_be_replayed_is_noted(tmp_path: Path, run: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "copy"
    shutil.copytree(run, out)
    lineage = json.loads((out / "lineage.json").read_text())
    steps = lineage["experiments"][0]["steps"]
    mutated = next(i for i, s in enumerate(steps) if s[2] == "alter_param")
    steps[mutated][6] = (steps[mutated][6] + 1) % 2**64  # another stream: another mutation
    (out / "lineage.json").write_text(json.dumps(lineage))
    doc = _lineage(out, "--experiment", "1", capsys=capsys)
    assert doc["rebuilt"] <= mutated + 1 and doc["best"] is None
    assert f"rebuilt up to step {doc['rebuilt'] - 1}" in doc["note"]
    # a migrant that came without its lineage: a root with no first program
    lineage["experiments"][0]["first"] = None
    lineage["experiments"][0]["steps"] = [[5, -1, "injected", -1, -1, -1, 0, 0.5]]
    (out / "lineage.json").write_text(json.dumps(lineage))
    assert main(["lineage", str(out), "--experiment", "1"]) == 0
    text = capsys.readouterr().out
    assert "note: its first step is 'injected'" in text and "Traceback" not in text


def test_island_ids_carry_their_tag(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                    ) -> None:
    out = _evolve(tmp_path, "islands", "--islands", "2", "--workers", "1",
                  "--migrate-every", "100", seed=5)
    for experiment in ("1", "2"):
        doc = _lineage(out, "--experiment", experiment, capsys=capsys)
        assert doc["note"] is None and doc["islands"] == 2
        assert all(s["island"] == s["id"] >> ID_SHIFT for s in doc["steps"])
        # this seed's chains migrate: a child born on one island of a parent from the other
        moved = [i for i in range(1, len(doc["steps"]))
                 if doc["steps"][i]["island"] != doc["steps"][i - 1]["island"]]
        assert len(moved) == 1, "a migrant came with its ancestry and was replayed"
        assert main(["lineage", str(out), "--experiment", experiment, "--steps"]) == 0
        step = doc["steps"][moved[0]]
        assert (f"island {step['island']} (from a migrant of island {1 - step['island']})"
                in capsys.readouterr().out)


def test_errors_name_the_problem(tmp_path: Path, run: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["lineage", str(tmp_path)]) == 1
    assert "not a run folder" in capsys.readouterr().err
    cell = tmp_path / "experiment" / "cell" / "seed-1"
    shutil.copytree(run, cell)
    assert main(["lineage", str(tmp_path / "experiment")]) == 1
    assert f"give one of its runs: {cell}" in capsys.readouterr().err
    assert main(["lineage", str(run), "--experiment", "3"]) == 1
    assert "holds experiments 1, 2" in capsys.readouterr().err
    (cell / "lineage.json").write_text('{"format": "azdsl-lineage", "version": 1, '
                                       '"experiments": [{"experiment": 0}]}')
    assert main(["lineage", str(cell)]) == 1
    assert "experiments[0].experiment" in capsys.readouterr().err
    lineage = json.loads((run / "lineage.json").read_text())
    lineage["experiments"][0].update(first=None, steps=[])
    (cell / "lineage.json").write_text(json.dumps(lineage))
    assert main(["lineage", str(cell), "--experiment", "1"]) == 1
    assert "experiment 1 has no lineage" in capsys.readouterr().err
    (cell / "lineage.json").unlink()
    assert main(["lineage", str(cell)]) == 1
    assert "lineage.json: missing" in capsys.readouterr().err
    assert main(["lineage", str(run), "--min-gain", "2"]) == 2


def test_run_folder_formats_load_with_json_and_pandas(run: Path) -> None:
    records = [json.loads(line) for line in (run / "progress.jsonl").read_text().splitlines()]
    assert {(r["format"], r["version"]) for r in records} == {("azdsl-progress", 1)}
    lineage, report = _stored(run)
    checkpoint = json.loads((run / "checkpoint.json").read_text())
    assert (lineage["format"], report["format"], checkpoint["format"]) == (
        "azdsl-lineage", "azdsl-report", "azdsl-checkpoint")
    assert all(isinstance(d["version"], int) for d in (lineage, report, checkpoint))
    pd = pytest.importorskip("pandas")
    progress = pd.read_json(run / "progress.jsonl", lines=True, precise_float=True)
    assert len(progress) == len(records)
    assert progress["best_ever"].tolist() == [r["best_ever"] for r in records]
    steps = pd.DataFrame(lineage["experiments"][0]["steps"], columns=lineage["fields"])
    assert steps["fitness"].iloc[-1] == report["experiments"][0]["search_fitness"]
    experiments = pd.DataFrame(report["experiments"])
    assert experiments["individuals"].sum() == report["individuals"]
