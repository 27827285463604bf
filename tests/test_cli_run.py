"""`azdsl run`: fitness on tasks from the command line, and one-line errors for bad inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from azdsl.cli import main
from azdsl.language.parse import parse_file
from azdsl.running.evaluate import evaluate
from azdsl.running.tasks import TaskSpec, make_tasks, npz_task

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
LINEAR_SGD = str(EXAMPLES / "linear_sgd.az")


def printed_fitness(out: str) -> float:
    first = out.splitlines()[0]
    assert first.startswith("fitness ")
    return float(first.split()[1])


def test_prints_the_fitness_evaluate_gives(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", LINEAR_SGD, "--task", "linear", "--dim", "4", "--train", "1000",
                 "--tasks", "3", "--backend", "interp"]) == 0
    tasks = make_tasks(TaskSpec(kind="linear", dim=4, num_tasks=3, num_train=1000))
    expected = evaluate(parse_file(LINEAR_SGD), tasks).fitness
    assert printed_fitness(capsys.readouterr().out) == expected
    assert 0.5 < expected < 1.0


def test_every_backend_prints_the_same_fitness(capsys: pytest.CaptureFixture[str]) -> None:
    printed = []
    for backend in ("interp", "vm", "jit"):
        assert main(["run", LINEAR_SGD, "--tasks", "2", "--seed", "7",
                     "--backend", backend]) == 0
        printed.append(printed_fitness(capsys.readouterr().out))
    assert len(set(printed)) == 1


def test_verbose_prints_each_task(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", LINEAR_SGD, "--task", "affine", "--tasks", "3", "-v",
                 "--backend", "interp"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and all("task" in line for line in lines[1:])


def test_user_data_from_an_npz_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    g = np.random.default_rng(0)
    x = g.normal(size=(60, 4))
    y = x @ np.array([0.5, -1.0, 2.0, 0.0])
    data = tmp_path / "data.npz"
    np.savez(data, x_train=x[:40], y_train=y[:40], x_valid=x[40:], y_valid=y[40:])
    assert main(["run", LINEAR_SGD, "--task", "npz", "--data", str(data), "--kind", "regression",
                 "--backend", "interp", "-v"]) == 0
    out = capsys.readouterr().out
    assert 0.0 < printed_fitness(out) < 1.0
    assert out.splitlines()[1:] == [f"  task 0 (data): {printed_fitness(out)!r}"]  # one task


def binary_npz(path: Path, **kind: str) -> Path:
    """An .npz of 0/1 labels (which fit regression and classification alike)."""
    g = np.random.default_rng(1)
    x = g.normal(size=(60, 4))
    y = (x[:, 0] > 0).astype(float)
    np.savez(path, x_train=x[:40], y_train=y[:40], x_valid=x[40:], y_valid=y[40:], **kind)
    return path


def test_an_npz_files_kind_is_explicit(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    data = str(binary_npz(tmp_path / "labels.npz"))
    err = error_of(["run", LINEAR_SGD, "--task", "npz", "--data", data], capsys)
    assert "does not say whether it is regression or classification" in err and "--kind" in err
    fitness = {}
    for kind in ("regression", "classification"):
        assert main(["run", LINEAR_SGD, "--task", "npz", "--data", data, "--kind", kind,
                     "--backend", "interp"]) == 0
        fitness[kind] = printed_fitness(capsys.readouterr().out)
        task = npz_task(data, kind=kind)
        assert fitness[kind] == evaluate(parse_file(LINEAR_SGD), [task], backend="interp").fitness
    assert fitness["classification"] * 20 == round(fitness["classification"] * 20)  # accuracy
    assert fitness["regression"] != fitness["classification"]
    said = str(binary_npz(tmp_path / "said.npz", kind="classification"))
    assert main(["run", LINEAR_SGD, "--task", "npz", "--data", said, "--backend", "interp"]) == 0
    assert printed_fitness(capsys.readouterr().out) == fitness["classification"]
    err = error_of(["run", LINEAR_SGD, "--task", "npz", "--data", said, "--kind", "regression"],
                   capsys)
    assert "says 'classification' but 'regression' was asked for" in err
    err = error_of(["run", LINEAR_SGD, "--task", "linear", "--kind", "classification"], capsys)
    assert "--kind is for --task npz; linear tasks are always regression" in err


def test_an_npz_file_is_one_task(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(binary_npz(tmp_path / "labels.npz", kind="regression"))
    err = error_of(["run", LINEAR_SGD, "--task", "npz", "--data", data, "--tasks", "10"], capsys)
    assert err.strip().endswith("one .npz file is one task; --tasks must be 1 (score each file "
                                "with its own run)")


def test_image_pairs_from_the_bundled_digits(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("sklearn")
    assert main(["run", str(EXAMPLES / "logistic_sgd.az"), "--task", "digits", "--tasks", "2",
                 "--backend", "vm"]) == 0
    assert printed_fitness(capsys.readouterr().out) > 0.7  # well above chance (0.5)


def error_of(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    return captured.err


def test_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert "cannot read" in error_of(["run", "no/such/file.az"], capsys)


def test_index_out_of_range_for_the_feature_size(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    program = tmp_path / "p.az"
    program.write_text("def Setup():\n  v1[5] = 1.0\ndef Predict():\n  s1 = dot(v0, v1)\n")
    err = error_of(["run", str(program), "--dim", "4"], capsys)
    assert "index 5 is out of range for F = 4" in err


def test_more_cells_than_allowed(capsys: pytest.CaptureFixture[str]) -> None:
    err = error_of(["run", str(EXAMPLES / "neural_net.az"), "--memory", "4,3,1"], capsys)
    assert "needs 5 scalar cells" in err and "allows 4" in err


def test_malformed_npz_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "bad.npz"
    np.savez(data, x_train=np.zeros((10, 4)))
    err = error_of(["run", LINEAR_SGD, "--task", "npz", "--data", str(data)], capsys)
    assert len(err.strip().splitlines()) == 1


def test_npz_without_a_path(capsys: pytest.CaptureFixture[str]) -> None:
    assert "--data" in error_of(["run", LINEAR_SGD, "--task", "npz"], capsys)
