"""The one loader of the project's YAML text files: what the channels, the console and the actions say or show besides
the responses of domain.yml (weiquan/edge/channels/*_texts.yml and cards.yml, weiquan/handoff/texts.yml,
actions/intent_labels.yml).

Each file is a mapping with `version: "3.1"` whose leaves are text (or lists of text); a file that is not is refused
when it is first read (at start-up, and in tests), not in the middle of a conversation. A missing key names the file.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

VERSION = "3.1"


class TextFileError(ValueError):
    """A text file that is not a mapping of text."""


def _check(value: Any, where: str) -> None:
    if isinstance(value, str):
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            _check(item, f"{where}[{index}]")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _check(item, f"{where}.{key}")
    else:
        raise TextFileError(f"{where}: expected text, not {value!r}")


@dataclass(frozen=True)
class TextFile(Mapping[str, Any]):
    path: Path
    data: Mapping[str, Any]

    def __getitem__(self, key: str) -> Any:
        try:
            return self.data[key]
        except KeyError:
            raise KeyError(f"{self.path.name} has no {key!r}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def text(self, key: str, **variables: Any) -> str:
        """The text at `key` ("errors.not_found" reaches into a section), with its {placeholders} filled."""
        value: Any = self
        for part in key.split("."):
            value = value[part]
        if not isinstance(value, str):
            raise TextFileError(f"{self.path.name}: {key} is a section, not a text")
        return value.format(**variables) if variables else value


@cache
def load_text_file(path: Path) -> TextFile:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, Mapping):
        raise TextFileError(f"{path.name}: expected a mapping of texts")
    if str(data.get("version")) != VERSION:
        raise TextFileError(f'{path.name}: needs version: "{VERSION}"')
    body = {key: value for key, value in data.items() if key != "version"}
    for key, value in body.items():
        _check(value, f"{path.name}: {key}")
    return TextFile(path, body)
