"""`azdsl evolve`, `resume`, `demo` and `plot` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import components, linear_tasks

from azdsl.cli import main
from azdsl.commands.demo import demo_config_path
from azdsl.language.parse import parse
from azdsl.search.config import load_config

CONFIG = linear_tasks("search_tasks", 2, 30, 10, "dim = 4") + components(4, 2, 4) + """[search]
population_size = 30
[budget]
max_individuals = 200
max_experiments = 2
[run]
progress_every = 50
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "exp.toml"
    path.write_text(CONFIG)
    return path


def test_evolve_writes_a_complete_run_folder(tmp_path: Path, config: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(["evolve", str(config), "--out", str(out), "--seed", "5",
                 "--islands", "1"]) == 0
    captured = capsys.readouterr()
    assert "final fitness" in captured.out and "seed 5" in captured.err
    assert "experiment 2 done" in captured.err  # plain progress lines when not a terminal
    assert (out / "config.toml").read_text() == CONFIG
    run = json.loads((out / "run.json").read_text())
    assert (run["seed"], run["backend"]) == (5, "vm")
    progress = [json.loads(x) for x in (out / "progress.jsonl").read_text().splitlines()]
    assert {"individuals", "individuals_per_second", "best_fitness", "mean_fitness",
            "experiment", "train_steps", "fec_hits"} <= set(progress[0])
    assert [p["experiment"] for p in progress][-1] == 2
    report = json.loads((out / "report.json").read_text())
    assert len(report["experiments"]) == 2
    best = parse((out / "best.az").read_text())
    assert best == parse(report["program"])
    assert (out / "report.txt").read_text() == captured.out


def test_same_seed_gives_the_same_report(tmp_path: Path, config: Path) -> None:
    reports = []
    for name in ("a", "b"):
        assert main(["evolve", str(config), "--out", str(tmp_path / name), "--seed", "9",
                     "--quiet", "--islands", "1"]) == 0
        report = json.loads((tmp_path / name / "report.json").read_text())
        report.pop("seconds")
        for e in report["experiments"]:
            e.pop("seconds")
        reports.append(report)
    assert reports[0] == reports[1]


def test_interp_backend(tmp_path: Path, config: Path) -> None:
    assert main(["evolve", str(config), "--out", str(tmp_path / "r"), "--seed", "1",
                 "--backend", "interp", "--quiet", "--islands", "1"]) == 0


def test_user_errors_exit_1_with_the_key(tmp_path: Path, config: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(CONFIG.replace("population_size", "populaton_size"))
    assert main(["evolve", str(bad), "--out", str(tmp_path / "x")]) == 1
    assert "search.populaton_size" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    out = tmp_path / "run"
    out.mkdir()
    (out / "something").write_text("")
    assert main(["evolve", str(config), "--out", str(out)]) == 1
    assert "not empty" in capsys.readouterr().err
    assert main(["resume", str(tmp_path / "nowhere")]) == 1
    assert "not a run folder" in capsys.readouterr().err
    assert main(["evolve", str(tmp_path / "missing.toml"), "--out", str(tmp_path / "y")]) == 1
    assert main(["evolve", str(config)]) == 2  # --out is required
    assert main(["evolve", str(config), "--out", str(tmp_path / "z"), "--seed", "-1"]) == 2


def test_plot(tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "run"
    assert main(["evolve", str(config), "--out", str(out), "--seed", "3", "--quiet",
                 "--islands", "1"]) == 0
    assert main(["plot", str(out)]) == 0
    png = out / "progress.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["plot", str(out), "--out", str(tmp_path / "p.png")]) == 0
    assert (tmp_path / "p.png").exists()
    capsys.readouterr()
    assert main(["plot", str(tmp_path)]) == 1
    assert "progress.jsonl" in capsys.readouterr().err


def test_plot_format_follows_the_suffix(tmp_path: Path, config: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "run"
    assert main(["evolve", str(config), "--out", str(out), "--seed", "3", "--quiet",
                 "--islands", "1"]) == 0
    for name, magic in (("p.pdf", b"%PDF"), ("p.SVG", b"<?xml"), ("p.png", b"\x89PNG")):
        assert main(["plot", str(out), "--out", str(tmp_path / name)]) == 0
        assert (tmp_path / name).read_bytes().startswith(magic)
    capsys.readouterr()
    for name in ("p.jpg", "p"):
        assert main(["plot", str(out), "--out", str(tmp_path / name)]) == 1
        err = capsys.readouterr().err
        assert "use one of .png, .pdf, .svg" in err and "Traceback" not in err
        assert not (tmp_path / name).exists()


def test_demo_config_ships_and_loads() -> None:
    path = demo_config_path()
    assert path.exists()
    assert load_config(path).budget.sufficient_fitness == 0.9999


def test_help_lists_the_search_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for name in ("evolve", "resume", "demo", "plot"):
        assert name in text
