"""The built wheel works on its own: installed into a fresh venv, it parses from its own grammar."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

ROOT = Path(__file__).parent.parent

CHECK = """
import sys
import azdsl
from azdsl.language.syntax import grammar_path
program = azdsl.parse(open(sys.argv[1], encoding="utf-8").read())
print(azdsl.__file__)
print(grammar_path())
print(program.sizes())
"""


def test_wheel_installs_and_parses_from_its_packaged_grammar(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation",
                    "--outdir", str(tmp_path / "dist"), str(ROOT)],
                   check=True, capture_output=True, env=env, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("azdsl-*.whl")

    fresh = tmp_path / "fresh"
    venv.EnvBuilder(with_pip=False).create(fresh)
    python = fresh / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install",
                    "--no-deps", "--no-index", "--quiet", str(wheel)],
                   check=True, capture_output=True, env=env, timeout=300)
    # lark and numpy come from this environment; azdsl itself must come from the wheel.
    fresh_site = subprocess.run([str(python), "-c", "import sysconfig; "
                                 "print(sysconfig.get_paths()['purelib'])"],
                                check=True, capture_output=True, text=True).stdout.strip()
    Path(fresh_site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    result = subprocess.run([str(python), "-c", CHECK, str(ROOT / "examples" / "linear_sgd.az")],
                            cwd=cwd, check=True, capture_output=True, text=True, env=env,
                            timeout=120)
    package_file, grammar, sizes = result.stdout.splitlines()
    package = Path(package_file).parent
    assert package.is_relative_to(fresh)
    assert Path(grammar) == package / "grammar" / "azdsl.lark"
    assert sizes == "(1, 1, 4)"

    # The docs and every example come with the wheel: `azdsl docs` and `azdsl examples` work
    # from it alone (no repository in sight of the installed package).
    for name in [p.name for p in (ROOT / "docs").glob("*.md")]:
        assert (package / "docs" / name).read_bytes() == (ROOT / "docs" / name).read_bytes()
    for example in (ROOT / "examples").iterdir():
        assert (package / "examples" / example.name).is_file(), example.name
    docs = subprocess.run([str(python), "-m", "azdsl", "docs", "language", "--path"], cwd=cwd,
                          check=True, capture_output=True, text=True, env=env, timeout=120)
    assert Path(docs.stdout.strip()) == package / "docs" / "language.md"
    copied = cwd / "copied"
    subprocess.run([str(python), "-m", "azdsl", "examples", "--copy", str(copied)], cwd=cwd,
                   check=True, capture_output=True, env=env, timeout=120)
    assert (copied / "linear_sgd.az").read_text() == (
        ROOT / "examples" / "linear_sgd.az").read_text()
