"""The docs and examples a user has from the package alone, and defaults that never mislead:
stand-in select / final tasks are named in every report, report.json and checkpoint.json are
single versioned JSON documents."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from support import SEARCH_TASKS, components, linear_tasks

from azdsl.cli import main
from azdsl.runfolder import CHECKPOINT, REPORT_JSON, decode_checkpoint, encode_checkpoint

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"
TINY = """[search]
population_size = 8
tournament_size = 2
[budget]
max_individuals = 40
[run]
checkpoint_every = 20
"""


def evolve(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> tuple[Path, str]:
    config = tmp_path / "exp.toml"
    config.write_text(text)
    out = tmp_path / "run"
    capsys.readouterr()
    assert main(["evolve", str(config), "--out", str(out), "--seed", "1", "--islands", "1",
                 "--quiet"]) == 0
    return out, capsys.readouterr().out


def test_a_config_without_held_out_tasks_says_so_in_every_report(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, printed = evolve(tmp_path, SEARCH_TASKS + components(3, 1, 3) + TINY, capsys)
    report = json.loads((out / REPORT_JSON).read_text())
    assert report["select_tasks_stand_in"] == "the search tasks, as the config has no " \
                                              "[select_tasks]"
    assert report["final_tasks_stand_in"] == "the search tasks, as the config has no " \
                                             "[final_tasks]"
    for text in (printed, (out / "report.txt").read_text()):
        assert "unseen" not in text.replace("not unseen", "")
        assert "final fitness (on the search tasks, as the config has no [final_tasks]; " \
               "not unseen tasks)" in text


def test_held_out_tasks_are_reported_as_unseen(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    final = linear_tasks("final_tasks", 2, 50, 20, "dim = 4", "seed = 9")
    out, printed = evolve(tmp_path, SEARCH_TASKS + final + components(3, 1, 3) + TINY, capsys)
    report = json.loads((out / REPORT_JSON).read_text())
    assert report["final_tasks_stand_in"] == ""
    assert report["select_tasks_stand_in"] == "the search tasks, as the config has no " \
                                              "[select_tasks]"
    assert "final fitness (unseen tasks)" in printed


def test_report_and_checkpoint_are_single_versioned_json_documents(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, _ = evolve(tmp_path, SEARCH_TASKS + components(3, 1, 3) + TINY, capsys)
    report = json.loads((out / REPORT_JSON).read_text())
    assert (report["format"], report["version"]) == ("azdsl-report", 1)
    checkpoint = json.loads((out / CHECKPOINT).read_text())  # one document, not two
    assert (checkpoint["format"], checkpoint["version"]) == ("azdsl-checkpoint", 2)
    assert decode_checkpoint((out / CHECKPOINT).read_text(), "c") == checkpoint["state"]


def test_version_1_checkpoints_still_read() -> None:
    import hashlib

    state = {"a": [1, 2.5], "b": None}
    payload = json.dumps(state, separators=(",", ":"))
    header = {"format": "azdsl-checkpoint", "version": 1, "length": len(payload),
              "sha256": hashlib.sha256(payload.encode()).hexdigest()}
    assert decode_checkpoint(json.dumps(header) + "\n" + payload + "\n", "c") == state
    assert decode_checkpoint(encode_checkpoint(state), "c") == state


def test_docs_topics_print_every_page(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["docs"]) == 0
    listed = capsys.readouterr().out
    for page in DOCS.glob("*.md"):
        assert page.stem in listed
        assert main(["docs", page.stem]) == 0
        assert capsys.readouterr().out == page.read_text(encoding="utf-8")
    assert main(["docs", "nonsense"]) == 1
    assert "the topics are" in capsys.readouterr().err


def test_no_link_leaves_the_repository() -> None:
    for page in [*DOCS.glob("*.md"), ROOT / "README.md"]:
        text = page.read_text(encoding="utf-8")
        assert not re.search(r"\]\((?!#)[a-z]+:", text), page  # no [..](http:...) links
        assert "../shared" not in text, page
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
            assert (page.parent / target).exists(), (page, target)


def test_examples_list_print_and_copy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shipped = sorted(p.name for p in (ROOT / "examples").iterdir()
                     if p.suffix in (".az", ".toml", ".py"))
    assert "softsign_ops.py" in shipped  # softsign.toml's extension travels with it
    assert main(["examples"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in shipped)
    assert main(["examples", "linear_sgd.az"]) == 0
    assert capsys.readouterr().out == (ROOT / "examples" / "linear_sgd.az").read_text()
    target = tmp_path / "mine"
    (target).mkdir()
    (target / "demo.toml").write_text("# my own\n")
    assert main(["examples", "--copy", str(target)]) == 0
    assert "left alone (already there): demo.toml" in capsys.readouterr().out
    assert sorted(p.name for p in target.iterdir()) == shipped
    assert (target / "demo.toml").read_text() == "# my own\n"
    assert main(["examples", "nope.az"]) == 1
