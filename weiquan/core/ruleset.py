"""Rule sets: one commented YAML file per version under rulesets/, validated into frozen dataclasses.

A broken file raises RuleSetError at load time (and fails tests/test_ruleset.py), never in the middle of a conversation.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from weiquan.core.vocabulary import Vocabulary, load_vocabulary

RULESET_DIR = Path(__file__).resolve().parents[2] / "rulesets"
DEFAULT_RULESET = "taobao_2013"


class RuleSetError(ValueError):
    """The rule data file is missing a field or holds a value of the wrong kind."""


@dataclass(frozen=True)
class Eligibility:
    platforms_online: tuple[str, ...]
    required_trade_status: str
    window_days: int
    window_reason: str
    urgent_days_left: int


@dataclass(frozen=True)
class Penalty:
    ordinary_points: int
    ordinary_consequence: str
    serious_points: int
    serious_consequence: str
    serious_candidates: tuple[str, ...]


@dataclass(frozen=True)
class Processing:
    handle_within_workdays: int
    finish_within_workdays: int
    seller_evidence_days: int


@dataclass(frozen=True)
class FilingPath:
    name: str
    steps: tuple[str, ...]
    link: str


@dataclass(frozen=True)
class EvidenceItem:
    code: str
    label: str
    howto: str | None


@dataclass(frozen=True)
class ScriptLine:
    speaker: str  # a key of RuleSet.speakers: who says the line
    line: str


@dataclass(frozen=True)
class Display:
    """How dates are written: format strings with {year} {month} {day} {weekday}, weekday names Monday first."""

    date: str
    date_with_year: str
    weekdays: tuple[str, ...]


@dataclass(frozen=True)
class RuleSet:
    id: str
    label: str
    source: str
    rule_centre: str
    links_may_have_moved: bool
    eligibility: Eligibility
    penalty: Penalty
    processing: Processing
    links: Mapping[str, str]
    contacts: Mapping[str, str]
    filing_paths: tuple[FilingPath, ...]
    buyer_evidence: tuple[EvidenceItem, ...]
    seller_evidence: tuple[EvidenceItem, ...]
    phone_evidence_note: str
    phone_script: tuple[ScriptLine, ...]
    speakers: Mapping[str, str]
    display: Display
    max_asks: int  # how often the complaint form asks one question before it moves on
    confirm_date_months_back: int  # a yearless date further back than this is confirmed before the ruling

    def link(self, key: str) -> str:
        return self.links[key]


def _require(data: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in data:
        raise RuleSetError(f"{where}: missing '{key}'")
    value = data[key]
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        raise RuleSetError(f"{where}.{key}: expected {kind.__name__}, got {type(value).__name__}")
    return value


def _evidence(
    items: list[Any], links: Mapping[str, str], where: str, vocabulary: Vocabulary
) -> tuple[EvidenceItem, ...]:
    result = []
    for index, item in enumerate(items):
        spot = f"{where}[{index}]"
        code = _require(item, "code", str, spot)
        if code not in vocabulary.codes("evidence"):
            raise RuleSetError(f"{spot}.code: unknown evidence code '{code}'")
        howto = item.get("howto")
        if howto is not None and howto not in links:
            raise RuleSetError(f"{spot}.howto: '{howto}' is not a key of links")
        result.append(EvidenceItem(code=code, label=_require(item, "label", str, spot), howto=howto))
    return tuple(result)


def _harassment_list(values: list[Any], where: str, vocabulary: Vocabulary) -> tuple[str, ...]:
    unknown = [value for value in values if value not in vocabulary.codes("harassment_type")]
    if unknown:
        raise RuleSetError(f"{where}: unknown harassment types {unknown}")
    return tuple(values)


def _display(data: Mapping[str, Any]) -> Display:
    weekdays = tuple(str(day) for day in _require(data, "weekdays", list, "display"))
    if len(weekdays) != 7:
        raise RuleSetError("display.weekdays: expected seven names, Monday first")
    display = Display(
        _require(data, "date", str, "display"), _require(data, "date_with_year", str, "display"), weekdays
    )
    for template in (display.date, display.date_with_year):
        template.format(year=2000, month=1, day=1, weekday=weekdays[0])  # a placeholder typo fails here, not mid-chat
    return display


def parse_ruleset(data: Mapping[str, Any], vocabulary: Vocabulary | None = None) -> RuleSet:
    """Validate one parsed YAML document into a RuleSet; codes are checked against the bot's vocabulary."""
    vocabulary = vocabulary or load_vocabulary()
    if not isinstance(data, Mapping):
        raise RuleSetError("rule set: expected a mapping at the top level")
    links = {key: str(url) for key, url in _require(data, "links", dict, "rule set").items()}
    rule_centre = _require(data, "rule_centre", str, "rule set")
    if rule_centre not in links:
        raise RuleSetError(f"rule_centre: '{rule_centre}' is not a key of links")

    elig = _require(data, "eligibility", dict, "rule set")
    pen = _require(data, "penalty", dict, "rule set")
    proc = _require(data, "processing", dict, "rule set")
    evidence = _require(data, "evidence", dict, "rule set")

    paths = []
    for index, path in enumerate(_require(data, "filing_paths", list, "rule set")):
        spot = f"filing_paths[{index}]"
        link = _require(path, "link", str, spot)
        if link not in links:
            raise RuleSetError(f"{spot}.link: '{link}' is not a key of links")
        steps = tuple(str(step) for step in _require(path, "steps", list, spot))
        paths.append(FilingPath(name=_require(path, "name", str, spot), steps=steps, link=link))

    speakers = {str(key): str(name) for key, name in _require(data, "speakers", dict, "rule set").items()}
    script = tuple(
        ScriptLine(_require(line, "speaker", str, "phone_script"), _require(line, "line", str, "phone_script"))
        for line in _require(data, "phone_script", list, "rule set")
    )
    if not paths or not script:
        raise RuleSetError("rule set: filing_paths and phone_script must not be empty")
    unknown_speakers = sorted({line.speaker for line in script} - set(speakers))
    if unknown_speakers:
        raise RuleSetError(f"phone_script: speakers {unknown_speakers} are not keys of speakers")
    dialogue = _require(data, "dialogue", dict, "rule set")

    return RuleSet(
        id=_require(data, "id", str, "rule set"),
        label=_require(data, "label", str, "rule set"),
        source=_require(data, "source", str, "rule set"),
        rule_centre=rule_centre,
        links_may_have_moved=_require(data, "links_may_have_moved", bool, "rule set"),
        eligibility=Eligibility(
            platforms_online=tuple(_require(elig, "platforms_online", list, "eligibility")),
            required_trade_status=_require(elig, "required_trade_status", str, "eligibility"),
            window_days=_require(elig, "window_days", int, "eligibility"),
            window_reason=_require(elig, "window_reason", str, "eligibility"),
            urgent_days_left=_require(elig, "urgent_days_left", int, "eligibility"),
        ),
        penalty=Penalty(
            ordinary_points=_require(pen, "ordinary_points", int, "penalty"),
            ordinary_consequence=_require(pen, "ordinary_consequence", str, "penalty"),
            serious_points=_require(pen, "serious_points", int, "penalty"),
            serious_consequence=_require(pen, "serious_consequence", str, "penalty"),
            serious_candidates=_harassment_list(
                _require(pen, "serious_candidates", list, "penalty"), "penalty", vocabulary
            ),
        ),
        processing=Processing(
            handle_within_workdays=_require(proc, "handle_within_workdays", int, "processing"),
            finish_within_workdays=_require(proc, "finish_within_workdays", int, "processing"),
            seller_evidence_days=_require(proc, "seller_evidence_days", int, "processing"),
        ),
        links=links,
        contacts={key: str(value) for key, value in _require(data, "contacts", dict, "rule set").items()},
        filing_paths=tuple(paths),
        buyer_evidence=_evidence(_require(evidence, "buyer", list, "evidence"), links, "evidence.buyer", vocabulary),
        seller_evidence=_evidence(
            _require(evidence, "seller", list, "evidence"), links, "evidence.seller", vocabulary
        ),
        phone_evidence_note=_require(evidence, "phone_note", str, "evidence"),
        phone_script=script,
        speakers=speakers,
        display=_display(_require(data, "display", dict, "rule set")),
        max_asks=_require(dialogue, "max_asks", int, "dialogue"),
        confirm_date_months_back=_require(dialogue, "confirm_date_months_back", int, "dialogue"),
    )


def load_ruleset_file(path: Path) -> RuleSet:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise RuleSetError(f"{path}: {error}") from error
    return parse_ruleset(data)


def available_rulesets() -> list[str]:
    return sorted(path.stem for path in RULESET_DIR.glob("*.yml"))


@cache
def load_ruleset(ruleset_id: str = DEFAULT_RULESET) -> RuleSet:
    """Load (once per process) the rule set with this id from rulesets/<id>.yml."""
    return load_ruleset_file(RULESET_DIR / f"{ruleset_id}.yml")
