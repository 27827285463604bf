"""`azdsl plot`: several runs on one figure (median and quartiles), steps, plain axes, marks,
the journey figure and its labels, paper sizes and formats."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import pytest
from support import SEARCH_TASKS, budget, components, held_out_tasks, population

from azdsl.cli import main
from azdsl.commands import plot
from azdsl.commands.lineage import load
from azdsl.errors import ConfigError

CONFIG = (SEARCH_TASKS + held_out_tasks(4) + components(4, 2, 4) + population(30, 5)
          + budget(600, 2, 100))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Seeds 1 and 2 of one config (an experiment folder's cell), and a run of another."""
    tmp = tmp_path_factory.mktemp("plot")
    out = []
    for name, seed, text in (("cell/seed-1", 1, CONFIG), ("cell/seed-2", 2, CONFIG),
                             ("other", 3, CONFIG.replace("max_experiments = 2",
                                                         "max_experiments = 1"))):
        (tmp / "exp.toml").write_text(text)
        assert main(["evolve", str(tmp / "exp.toml"), "--out", str(tmp / name), "--seed",
                     str(seed), "--quiet", "--islands", "1"]) == 0
        out.append(tmp / name)
    return out


def test_count_reads_without_offsets() -> None:
    assert [plot.count(v) for v in (0, 500, 1000, 1500, 20_000, 1_500_000, 2e9)] == [
        "0", "500", "1k", "1.5k", "20k", "1.5M", "2G"]


def test_quartiles_hold_each_run_as_steps() -> None:
    a = plot.Curve([10, 20, 30], [0.1, 0.5, 0.6], [], None)
    b = plot.Curve([10, 25], [0.3, 0.9], [], None)
    c = plot.Curve([15], [0.2], [], None)
    grid, mid, low, high = plot._quartiles([a, b, c])
    assert grid.tolist() == [10, 15, 20, 25, 30]
    # at 10 only a and b had reported; c holds 0.2 from 15; b holds 0.9 after it ended
    assert mid.tolist() == pytest.approx([0.2, 0.2, 0.3, 0.5, 0.6])
    assert low.tolist() == pytest.approx([0.15, 0.15, 0.25, 0.35, 0.4])
    assert high.tolist() == pytest.approx([0.25, 0.25, 0.4, 0.7, 0.75])


def test_groups_put_one_configs_seeds_together(runs: list[Path]) -> None:
    by_curve = plot.groups([str(p) for p in runs])
    assert by_curve == {"cell": runs[:2], "other": runs[2:]}
    assert plot.groups([str(runs[0].parent.parent)]) == {"cell": runs[:2]}  # an experiment
    assert plot.groups([str(runs[0])]) == {"seed-1": runs[:1]}


def test_progress_figure_draws_steps_bands_and_marks(runs: list[Path]) -> None:
    plt = plot._pyplot()
    fig = plot.progress_figure(plt, plot.groups([str(p) for p in runs]), plot.SIZES["single"])
    ax = fig.axes[0]
    fig.canvas.draw()
    assert tuple(fig.get_size_inches()) == (3.5, 2.5)
    curves = [line for line in ax.lines if line.get_drawstyle() == "steps-post"]
    assert [line.get_label() for line in curves] == ["cell (median of 2)", "other"]
    assert len(ax.collections) == 1  # the quartile band of the two seeds
    finals = [line for line in ax.lines if line.get_marker() == "*" and len(line.get_xdata())]
    selects = [line for line in ax.lines if line.get_marker() == "o"
               and len(line.get_xdata())]
    assert len(finals) == 3 and sum(len(s.get_xdata()) for s in selects) == 2 + 2 + 1
    best = max(line.get_ydata()[-1] for line in curves)
    assert 0 < best <= 1
    assert ax.yaxis.get_offset_text().get_text() == ""  # no offset notation
    assert ax.xaxis.get_offset_text().get_text() == ""
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert labels and all("e" not in t and "+" not in t for t in labels)
    plt.close(fig)


def test_journey_labels_the_largest_jumps(runs: list[Path]) -> None:
    plt = plot._pyplot()
    j, _, _ = load(runs[0])
    fig = plot.journey_figure(plt, runs[0], None, 2, plot.SIZES["double"])
    texts = [t.get_text() for t in fig.axes[0].texts]
    largest = sorted(j.jumps[1:], key=lambda jump: -jump.gain)[:2]
    assert sorted(texts) == sorted(jump.label for jump in largest)
    plt.close(fig)


def test_files_by_suffix_same_bytes_twice(tmp_path: Path, runs: list[Path],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    dirs = [str(p) for p in runs]
    for name, magic in (("a.svg", b"<?xml"), ("a.pdf", b"%PDF"), ("a.png", b"\x89PNG")):
        assert main(["plot", *dirs, "--out", str(tmp_path / name)]) == 0
        assert (tmp_path / name).read_bytes().startswith(magic)
    first = (tmp_path / "a.svg").read_bytes()
    assert main(["plot", *dirs, "--out", str(tmp_path / "a.svg")]) == 0
    assert (tmp_path / "a.svg").read_bytes() == first
    copy = tmp_path / "run"
    shutil.copytree(runs[0], copy)
    assert main(["plot", str(copy), "--journey", "--format", "svg"]) == 0
    assert (copy / "journey.svg").read_bytes().startswith(b"<?xml")
    capsys.readouterr()
    for args, message in (([*dirs], "several folders need --out"),
                          ([dirs[0], "--out", "x.png", "--format", "pdf"], "disagree"),
                          ([*dirs, "--journey", "--out", "j.png"], "one DIR"),
                          ([str(tmp_path)], "progress.jsonl")):
        assert main(["plot", *args]) == 1
        assert message in capsys.readouterr().err


def test_no_matplotlib_is_a_clear_error(runs: list[Path], monkeypatch: pytest.MonkeyPatch
                                        ) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails
    args = argparse.Namespace(dirs=[str(runs[0])], journey=False, experiment=None, labels=6,
                              out=None, format=None, size=None)
    with pytest.raises(ConfigError, match=r"pip install 'azdsl\[plot\]'"):
        plot.run(args)
