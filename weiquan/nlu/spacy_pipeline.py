"""The spaCy rule pipeline: a blank Chinese pipeline (jieba segmenter) with a regex ruler for the patterns in
rule_patterns.yml. Built from code by `make setup` (no model download exists or is needed) and saved to build/spacy_zh,
where the Rasa component in rule_entities.py loads it by path.
"""
# No `from __future__ import annotations` here: spaCy resolves factory signatures at runtime.

import re
import sys
from pathlib import Path
from typing import Any, Iterable

import spacy
import yaml
from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.util import filter_spans

ROOT = Path(__file__).resolve().parents[2]
PATTERNS_FILE = Path(__file__).with_name("rule_patterns.yml")
DICTIONARY_DIR = ROOT / "data" / "dictionary"
DEFAULT_PIPELINE_DIR = ROOT / "build" / "spacy_zh"
FACTORY = "weiquan_regex_ruler"


class RegexRuler:
    """Marks regex matches over the whole text as entities, snapped outward to token boundaries."""

    def __init__(self, patterns: "list[dict[str, str]]", negations: "list[str]") -> None:
        self.patterns = [(item["label"], re.compile(item["regex"])) for item in patterns]
        self.negations = tuple(negations)

    def _negated(self, text: str, start: int) -> bool:
        return text[:start].endswith(self.negations) if self.negations else False

    def __call__(self, doc: Doc) -> Doc:
        spans: "list[Span]" = []
        for label, regex in self.patterns:
            for match in regex.finditer(doc.text):
                if label == "THREAT" and self._negated(doc.text, match.start()):
                    continue
                span = doc.char_span(match.start(), match.end(), label=label, alignment_mode="expand")
                if span is not None:
                    spans.append(span)
        doc.set_ents(filter_spans(spans))
        return doc


@Language.factory(FACTORY, default_config={"patterns": [], "negations": []})
def make_regex_ruler(nlp: Language, name: str, patterns: "list[dict[str, str]]", negations: "list[str]") -> RegexRuler:
    return RegexRuler(patterns, negations)


def load_patterns(path: Path = PATTERNS_FILE) -> "dict[str, Any]":
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for item in data["patterns"]:
        re.compile(item["regex"])  # a broken regex fails the build, not a conversation
    if any("$" in item["regex"] for item in data["patterns"]):
        raise ValueError("rule_patterns.yml: '$' is not allowed (spaCy's config would mangle it); use (?!.) instead")
    return {"patterns": data["patterns"], "negations": [str(word) for word in data.get("negations", [])]}


def load_user_dictionaries(folder: Path = DICTIONARY_DIR) -> None:
    """Give jieba the same domain words Rasa's JiebaTokenizer uses, so spans snap to the same tokens."""
    import jieba

    for path in sorted(folder.glob("*.txt")):
        jieba.load_userdict(str(path))


def build_pipeline(patterns: dict[str, Any] | None = None) -> Language:
    nlp = spacy.blank("zh", config={"nlp": {"tokenizer": {"segmenter": "jieba"}}})
    nlp.add_pipe(FACTORY, config=patterns or load_patterns())
    return nlp


def load_pipeline(path: Path = DEFAULT_PIPELINE_DIR) -> Language:
    if not path.exists():
        raise FileNotFoundError(f"spaCy pipeline not built at {path}: run `make setup`")
    load_user_dictionaries()
    return spacy.load(path)


def entities(nlp: Language, text: str) -> "Iterable[tuple[str, int, int, str]]":
    """(label, start, end, text) for every rule match in `text`."""
    for ent in nlp(text).ents:
        yield ent.label_, ent.start_char, ent.end_char, ent.text


def main(argv: list[str]) -> int:
    target = Path(argv[1]) if len(argv) > 1 else DEFAULT_PIPELINE_DIR
    load_user_dictionaries()
    build_pipeline().to_disk(target)
    print(f"spaCy rule pipeline written to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
