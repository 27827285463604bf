"""The config schema is the whole truth about config keys: the reader reads exactly its keys,
and docs/config.md is generated from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import azdsl.search.config as config_module
from azdsl.errors import ConfigError
from azdsl.search.config import parse_config
from azdsl.search.config_schema import SCHEMA, reference_markdown

DOCS = Path(__file__).parent.parent / "docs" / "config.md"

# A value of the right shape for each kind of key, so that every key is read.
SAMPLE: dict[str, str] = {"integer": "1", "number": "0.5", "boolean": "true", "string": '"x"',
                          "list": "[]"}


def every_key_config() -> str:
    lines = []
    for section in SCHEMA:
        lines.append(f"[[{section.name}]]" if section.array else f"[{section.name}]")
        for key in section.keys:
            value = f'"{key.choices[0]}"' if key.choices else SAMPLE[key.kind]
            lines.append(f"{key.name} = {value}")
    return "\n".join(lines) + "\n"


def test_the_reader_reads_every_schema_key_and_no_other(monkeypatch: pytest.MonkeyPatch) -> None:
    read: set[tuple[str, str]] = set()
    original = config_module._Reader.raw

    def recording(self: Any, name: str) -> Any:
        read.add((self.prefix.split("[")[0], name))
        return original(self, name)

    monkeypatch.setattr(config_module._Reader, "raw", recording)
    try:  # the values clash (size with init_size...), but every key is read all the same
        parse_config(every_key_config())
    except ConfigError as exc:
        assert not [d for d in exc.diagnostics if "unknown key" in d.message], exc.render()
    expected = {(s.name, k.name) for s in SCHEMA for k in s.keys}
    keys_read = {pair for pair in read if pair[0]}
    assert keys_read == expected, (expected - keys_read, keys_read - expected)


def test_reading_a_key_outside_the_schema_fails_loudly() -> None:
    reader = config_module._Reader({}, "search", [], lambda _: None,
                                   config_module.SECTIONS["search"])
    with pytest.raises(KeyError, match="not in the config schema"):
        reader.integer("undocumented_key")


def test_the_reference_page_is_generated_from_the_schema() -> None:
    assert DOCS.read_text(encoding="utf-8") == reference_markdown(), (
        "docs/config.md is stale: python -m azdsl.search.config_schema > docs/config.md")
    for section in SCHEMA:
        assert section.name in DOCS.read_text(encoding="utf-8")
        for key in section.keys:
            assert f"| `{key.name}` |" in DOCS.read_text(encoding="utf-8")


def test_defaults_in_the_reference_are_the_defaults_a_config_gets() -> None:
    config = parse_config('[search_tasks]\n[learn]\nops = ["s = s + s"]\n'
                          "[budget]\nmax_individuals = 10\n")
    search = {k.name: k.default for k in config_module.SECTIONS["search"].keys}
    assert config.population_size == search["population_size"] == 1000
    assert config.tournament_size == search["tournament_size"]
    assert config.mutations == search["mutations"]
    assert config.progress_every == config_module.SECTIONS["run"].key("progress_every").default
