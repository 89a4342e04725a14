"""Check the NLU training data in data/nlu/ before training.

Rasa only *warns* (and then silently drops the entity) when an annotation does not fall on
jieba token boundaries, and it happily trains on entity values that the dialogue never
expects. This script makes those problems loud, using Rasa's own YAML reader and the same
jieba user dictionary the JiebaTokenizer loads (`dictionary_path: data/dictionary`).

It prints:
  1. example counts per intent (with the minimum agreed for each intent),
  2. entity annotations whose start/end is not a jieba token boundary,
  3. annotated surface forms that do not resolve, through data/nlu/synonyms.yml, to a
     canonical value from docs/architecture.md (and annotations of rule-extracted entities),
  4. exact or near-exact duplicate examples (across intents: error; within one: warning),
and, as a hint, synonym surface forms that occur in an example without an annotation.

Exit status 1 if any of 2, 3, a cross-intent duplicate, an unknown intent/entity or a
conflicting synonym is found; 0 otherwise.

    .venv/bin/python scripts/check_nlu_data.py [-v]
"""

from __future__ import annotations

import argparse
import difflib
import logging
import os
import re
import sys
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from weiquan.core.vocabulary import load_vocabulary

ROOT = Path(__file__).resolve().parents[1]
NLU_DIR = ROOT / "data" / "nlu"
DICTIONARY_DIR = ROOT / "data" / "dictionary"
SYNONYMS_FILE = NLU_DIR / "synonyms.yml"
VOCABULARY = load_vocabulary()

# The entity contract (docs/architecture.md, "Entities and their canonical values").
# The entity contract: the codes of weiquan/core/vocabulary.yml (the one list), without the `unknown` the form
# records itself when it could not read an answer (no buyer types that).
CANONICAL: dict[str, set[str]] = {
    slot: set(VOCABULARY.labels(slot)) - {"unknown"}
    for slot in ("platform", "trade_status", "harassment_type", "evidence")
}
# Filled by the rule extractor (weiquan/nlu); annotating them would teach DIET to compete.
RULE_ENTITIES = {"success_time", "order_id", "phone", "problem"}

# The intent contract, with the minimum number of examples agreed with the product owner.
MINIMUM_EXAMPLES: dict[str, int] = {
    **dict.fromkeys(
        [
            "report_harassment",
            "report_safety_threat",
            "ask_deadline_passed",
            "ask_how_to_file",
            "ask_evidence",
            "ask_penalty",
            "ask_processing_time",
            "ask_appeal",
            "seller_accused",
            "request_human",
            "out_of_scope",
        ],
        65,
    ),
    **dict.fromkeys(["ask_call_recording", "ask_evidence_code", "ask_agent_alias", "ask_tmall", "ask_anonymity"], 30),
    "inform": 100,
    "stop": 30,
    "cancel_handoff": 30,
    **dict.fromkeys(["greet", "goodbye", "thank", "affirm", "deny", "bot_challenge"], 25),
}

# Near-duplicate thresholds: texts shorter than this (after normalising) must match exactly.
NEAR_MIN_LENGTH = 8
NEAR_RATIO = 0.9


@dataclass(frozen=True)
class Example:
    file: str
    intent: str
    text: str
    entities: tuple[dict, ...]


def _quiet_imports() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.getLogger("jieba").setLevel(logging.WARNING)


def load_jieba():
    """Load jieba with every user dictionary in data/dictionary, as JiebaTokenizer does."""
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    for path in sorted(DICTIONARY_DIR.glob("*")):
        jieba.load_userdict(str(path))
    return jieba


def read_user_dictionary() -> set[str]:
    words: set[str] = set()
    for path in sorted(DICTIONARY_DIR.glob("*")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                words.add(line.split()[0])
    return words


def load_examples() -> tuple[list[Example], dict[str, dict[str, str]]]:
    """Every intent example from data/nlu/*.yml, and the synonyms found in each file."""
    from rasa.shared.nlu.training_data.loading import load_data

    examples: list[Example] = []
    synonyms_by_file: dict[str, dict[str, str]] = {}
    for path in sorted(NLU_DIR.glob("*.yml")):
        data = load_data(str(path), language="zh")
        synonyms_by_file[path.name] = dict(data.entity_synonyms)
        for message in data.intent_examples:
            examples.append(
                Example(
                    file=path.name,
                    intent=message.get("intent"),
                    text=message.get("text"),
                    entities=tuple(message.get("entities") or ()),
                )
            )
    return examples, synonyms_by_file


def report_counts(examples: list[Example]) -> list[str]:
    errors: list[str] = []
    counts = Counter(example.intent for example in examples)
    files: dict[str, set[str]] = defaultdict(set)
    for example in examples:
        files[example.intent].add(example.file)
    print("== 1. examples per intent")
    for intent in sorted(set(counts) | set(MINIMUM_EXAMPLES)):
        minimum = MINIMUM_EXAMPLES.get(intent)
        flag = ""
        if minimum is None:
            flag = "  <-- not an intent in docs/architecture.md"
            errors.append(f"unknown intent {intent!r}")
        elif counts[intent] < minimum:
            flag = f"  <-- below the minimum of {minimum}"
        print(f"  {intent:22} {counts[intent]:5}  (min {minimum})  {', '.join(sorted(files[intent]))}{flag}")
    print(f"  {'total':22} {sum(counts.values()):5}")
    return errors


def _text_variants() -> list[tuple[str, Callable[[str, list[tuple[int, int]]], tuple[str, list]]]]:
    """The texts the tokenizer may see: as written, and after weiquan's text normaliser if it is present.

    ChineseTextNormalizer (weiquan/nlu/normalizer.py) rewrites training texts (traditional -> simplified,
    shorthand "tb" -> "淘宝", typos) and moves the annotations before JiebaTokenizer runs, so an annotation must
    fall on token boundaries in both texts to be safe whether or not config.yml lists the normaliser.
    """

    def raw(text: str, spans: list[tuple[int, int]]) -> tuple[str, list]:
        return text, list(spans)

    variants: list[tuple[str, Callable[[str, list[tuple[int, int]]], tuple[str, list]]]] = [("as written", raw)]
    sys.path.insert(0, str(ROOT))
    try:
        from weiquan.nlu import textnorm
    except Exception as error:  # any failure just means: check the text as written only
        print(f"  (text normaliser not importable: {error}; checking the text as written only)")
        return variants

    def normalised(text: str, spans: list[tuple[int, int]]) -> tuple[str, list]:
        norm = textnorm.normalize(text)
        return norm.text, [norm.to_normalized(start, end) for start, end in spans]

    variants.append(("normalised", normalised))
    return variants


def report_alignment(examples: list[Example], jieba) -> list[str]:
    print("== 2. entity annotations not on jieba token boundaries")
    errors: list[str] = []
    variants = _text_variants()
    for example in examples:
        if not example.entities:
            continue
        for label, transform in variants:
            text, spans = transform(example.text, [(e["start"], e["end"]) for e in example.entities])
            tokens = list(jieba.tokenize(text))
            starts = {start for _, start, _ in tokens}
            ends = {end for _, _, end in tokens}
            for entity, span in zip(example.entities, spans, strict=True):
                if span is not None and span[0] in starts and span[1] in ends:
                    continue
                surface = example.text[entity["start"] : entity["end"]]
                segmented = " / ".join(word for word, _, _ in tokens)
                errors.append(surface)
                print(f"  [{example.file} {example.intent}, {label}] {surface!r} ({entity['entity']}) in: {segmented}")
    print(f"  {len(errors)} misaligned (checked: {', '.join(label for label, _ in variants)})")
    return errors


def _synonym_table(synonyms_by_file: dict[str, dict[str, str]]) -> tuple[dict[str, str], list[str]]:
    """synonyms.yml as EntitySynonymMapper sees it (lower-cased keys), plus conflicts."""
    problems: list[str] = []
    table: dict[str, str] = {}
    all_values = set().union(*CANONICAL.values())
    for surface, value in synonyms_by_file.get(SYNONYMS_FILE.name, {}).items():
        key = surface.lower()
        if key in table and table[key] != value:
            problems.append(f"synonym {surface!r} maps to both {table[key]!r} and {value!r}")
        table[key] = value
        if value not in all_values:
            problems.append(f"synonym {surface!r} maps to {value!r}, not a canonical value")
    # Explicit values in annotations add synonyms too; they must agree with synonyms.yml.
    for name, synonyms in synonyms_by_file.items():
        if name == SYNONYMS_FILE.name:
            continue
        for surface, value in synonyms.items():
            known = table.get(surface.lower())
            if known is not None and known != value:
                problems.append(f"{name}: {surface!r} annotated as {value!r} but synonyms.yml says {known!r}")
    return table, problems


def _entity_value(entity: str, surface: str) -> str | None:
    """The entity-specific value (weiquan/nlu/entity_values.yml) the pipeline gives `surface`, if any."""
    sys.path.insert(0, str(ROOT))
    try:
        from weiquan.nlu import textnorm
        from weiquan.nlu.entity_values import canonical, default_table
    except Exception:  # without the component the generic synonyms are all there is
        return None
    return canonical(default_table(), entity, textnorm.normalize_text(surface))


def report_values(
    examples: list[Example], synonyms_by_file: dict[str, dict[str, str]], user_words: set[str], verbose: bool
) -> list[str]:
    print("== 3. annotations whose value is not canonical")
    table, errors = _synonym_table(synonyms_by_file)
    for problem in errors:
        print(f"  {problem}")
    surfaces_used: Counter = Counter()
    for example in examples:
        for entity in example.entities:
            name = entity["entity"]
            surface = example.text[entity["start"] : entity["end"]]
            where = f"[{example.file} {example.intent}] {surface!r} ({name})"
            if name in RULE_ENTITIES:
                errors.append(where)
                print(f"  {where}: rule-extracted entity, do not annotate")
                continue
            if name not in CANONICAL:
                errors.append(where)
                print(f"  {where}: entity not in docs/architecture.md")
                continue
            surfaces_used[(name, surface)] += 1
            mapped = _entity_value(name, surface) or table.get(
                surface.lower(), surface if surface in CANONICAL[name] else None
            )
            explicit = entity.get("value")
            if explicit != surface and explicit != mapped:
                errors.append(where)
                print(f"  {where}: explicit value {explicit!r} disagrees with synonyms.yml ({mapped!r})")
            elif mapped is None:
                errors.append(where)
                print(f"  {where}: surface form missing from synonyms.yml")
            elif mapped not in CANONICAL[name]:
                errors.append(where)
                print(f"  {where}: maps to {mapped!r}, not a value of {name}")
    print(f"  {len(errors)} problems")
    missing = sorted(
        surface
        for surface in {s for _, s in surfaces_used} | set(table)
        if surface not in user_words and not surface.isascii()
    )
    if missing and verbose:
        # Compounds of dictionary words (旺旺骂我, 淘宝店, 寄冥币 ...) are left out on purpose: as a single
        # token they would swallow a shorter annotation inside them ("在旺旺[骂我]"), see section 2.
        print(f"  note: surface forms not in the jieba user dictionary: {', '.join(missing)}")
    return errors


def normalise(text: str, convert: Callable[[str], str]) -> str:
    """Fold case, width, script, digits, punctuation, spaces and emoji away."""
    text = convert(unicodedata.normalize("NFKC", text).lower())
    text = re.sub(r"[\W_]+", "", text)
    # "打了20个电话" and "打了30个电话" are one example; a bare number ("88", an order id) stays itself.
    return re.sub(r"\d+", "0", text) if re.search(r"\D", text) else text


def _converter() -> Callable[[str], str]:
    """What the model sees: weiquan's normaliser (script, shorthand, typos) if importable, else OpenCC t2s."""
    sys.path.insert(0, str(ROOT))
    try:
        from weiquan.nlu import textnorm

        return textnorm.normalize_text
    except Exception:  # the normaliser is optional here; fall back to script conversion only
        pass
    try:
        import opencc

        return opencc.OpenCC("t2s").convert
    except ImportError:  # traditional/simplified pairs are then only caught if otherwise equal
        return lambda text: text


def _bigrams(text: str) -> set[str]:
    return {text[i : i + 2] for i in range(len(text) - 1)} or {text}


def find_duplicates(examples: list[Example]) -> Iterable[tuple[Example, Example, float]]:
    convert = _converter()
    keys = [normalise(example.text, convert) for example in examples]
    grams = [_bigrams(key) for key in keys]
    for i in range(len(examples)):
        for j in range(i + 1, len(examples)):
            a, b = keys[i], keys[j]
            if a == b:
                yield examples[i], examples[j], 1.0
                continue
            if min(len(a), len(b)) < NEAR_MIN_LENGTH or min(len(a), len(b)) < NEAR_RATIO * max(len(a), len(b)):
                continue
            overlap = len(grams[i] & grams[j]) / len(grams[i] | grams[j])
            if overlap < 0.6:
                continue
            ratio = difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()
            if ratio >= NEAR_RATIO:
                yield examples[i], examples[j], ratio


def report_duplicates(examples: list[Example], verbose: bool) -> list[str]:
    print(f"== 4. duplicate examples (exact after normalising, or similarity >= {NEAR_RATIO})")
    errors: list[str] = []
    within = 0
    for a, b, ratio in find_duplicates(examples):
        line = f"  {ratio:.2f}  {a.intent}: {a.text!r}  |  {b.intent}: {b.text!r}"
        if a.intent != b.intent:
            errors.append(line)
            print("  ACROSS" + line)
        else:
            within += 1
            if verbose or ratio == 1.0:
                print("  within" + line)
    print(f"  {len(errors)} across intents (error), {within} within one intent (warning)")
    return errors


def report_unannotated(examples: list[Example], synonyms_by_file: dict[str, dict[str, str]], verbose: bool) -> None:
    """Synonym surface forms that appear in an example without an annotation (a hint only)."""
    table, _ = _synonym_table(synonyms_by_file)
    forms = sorted((s for s in table if len(s) >= 2), key=len, reverse=True)
    hits = []
    for example in examples:
        covered = [(e["start"], e["end"]) for e in example.entities]
        lowered = example.text.lower()
        taken: list[tuple[int, int]] = []
        for form in forms:
            for match in re.finditer(re.escape(form), lowered):
                span = (match.start(), match.end())
                if any(s < span[1] and span[0] < e for s, e in covered + taken):
                    continue
                taken.append(span)
                hits.append((example, example.text[span[0] : span[1]]))
    print(f"== hint: {len(hits)} synonym surface forms appear without an annotation (-v lists them)")
    if verbose:
        for example, form in hits:
            print(f"  [{example.intent}] {form!r} in {example.text!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="list within-intent near duplicates and unannotated forms"
    )
    args = parser.parse_args(argv)

    _quiet_imports()
    jieba = load_jieba()
    examples, synonyms_by_file = load_examples()

    errors = report_counts(examples)
    errors += report_alignment(examples, jieba)
    errors += report_values(examples, synonyms_by_file, read_user_dictionary(), args.verbose)
    errors += report_duplicates(examples, args.verbose)
    report_unannotated(examples, synonyms_by_file, args.verbose)

    print("FAILED" if errors else "OK", f"({len(errors)} problems)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
