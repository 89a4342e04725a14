"""Decide whether `make train` has anything to do, from file CONTENTS, without importing Rasa.

Why not let `rasa train` decide: Rasa 3.6 never skips. It always runs its training graph and re-packs the model
archive (the file is rewritten every time), and its training cache is not reliable on this project. Observed here
with nothing changed: a second `rasa train` took 21 s (cache hits), a third retrained DIET for minutes. Its
`--dry-run` keys for LexicalSyntacticFeaturizer, the CountVectorsFeaturizers and DIET did not match the keys the
previous training had stored, and the real run computed other keys again (e.g. for the normaliser's train node):
the keys are hashed from live TrainingData objects that the NLU components, ours and Rasa's, change in place, so they
depend on when each is computed. Rasa also never fingerprints the jieba dictionary folder (the config only names it).

So the Makefile asks this script first. It hashes everything a trained model depends on and compares it with
`models/<name>.inputs.json`, written after a successful training:

    python scripts/train_stamp.py check  MODEL   -> exit 0 "up to date", 1 "train", 2 "train --force"
    python scripts/train_stamp.py begin  MODEL   -> note the inputs as they are when a training starts
    python scripts/train_stamp.py write  MODEL   -> record those inputs for the model just trained

The inputs are noted when the training starts, not when it ends: a file edited while Rasa trains (minutes) is not in
the model, so the next `make train` must see it as changed.

Only contents count: touching a file, a fresh clone or a rebuilt build/spacy_zh (loaded at run time, not stored in
the model) does not retrain.
"""
from __future__ import annotations

import hashlib
import json
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# What a model is made of: the training inputs and the code of our own NLU components (their source is part of
# Rasa's fingerprint too). Directories are walked; order does not matter, paths are part of the hash.
MODEL_INPUTS = ["config.yml", "domain.yml", "data", "weiquan/nlu", "weiquan/core/timeparse.py"]
# Rasa never looks inside the jieba dictionary folder: when it changes, the training must be forced.
FORCE_INPUTS = ["data/dictionary"]
# Not part of the model: the threat detector's data (data/safety/, never read by `rasa train`) is built into
# build/threat by make and loaded at run time, like build/spacy_zh.
EXCLUDED = ["data/safety"]
PACKAGES = ["rasa", "tensorflow", "jieba", "opencc"]
SKIP_SUFFIXES = {".pyc"}


def _files(spec: str) -> list[Path]:
    path = ROOT / spec
    if path.is_file():
        return [path]
    excluded = [ROOT / item for item in EXCLUDED]
    return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix not in SKIP_SUFFIXES
                  and "__pycache__" not in p.parts and not any(p.is_relative_to(x) for x in excluded))


def digest(specs: list[str]) -> str:
    sha = hashlib.sha256()
    for spec in specs:
        for path in _files(spec):
            sha.update(path.relative_to(ROOT).as_posix().encode())
            sha.update(b"\0")
            sha.update(path.read_bytes())
            sha.update(b"\0")
    return sha.hexdigest()


def versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "absent"
    return found


def current() -> dict[str, object]:
    return {"inputs": digest(MODEL_INPUTS), "dictionary": digest(FORCE_INPUTS), "packages": versions()}


def stamp_path(model: Path) -> Path:
    return model.with_name(model.name.removesuffix(".tar.gz") + ".inputs.json")


def check(model: Path) -> int:
    stamp = stamp_path(model)
    if not model.is_file():
        print(f"train: no model at {model.relative_to(ROOT)} yet", flush=True)
        return 1
    try:
        recorded = json.loads(stamp.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        print(f"train: {stamp.name} missing, the model's inputs are unknown", flush=True)
        return 2
    now = current()
    if recorded == now:
        print(f"train: nothing changed since {model.relative_to(ROOT)} was trained; using it", flush=True)
        return 0
    changed = [key for key in now if recorded.get(key) != now[key]]
    forced = "dictionary" in changed
    print(f"train: changed since the last training: {', '.join(changed)}", flush=True)
    return 2 if forced else 1


def pending_path(model: Path) -> Path:
    return model.with_name(model.name.removesuffix(".tar.gz") + ".inputs.pending.json")


def begin(model: Path) -> int:
    model.parent.mkdir(parents=True, exist_ok=True)
    pending_path(model).write_text(json.dumps(current(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return 0


def write(model: Path) -> int:
    """The inputs noted by `begin` become the model's; without `begin`, the inputs as they are now."""
    pending = pending_path(model)
    if pending.is_file():
        pending.replace(stamp_path(model))
    else:
        stamp_path(model).write_text(json.dumps(current(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return 0


def main(argv: list[str]) -> int:
    commands = {"check": check, "begin": begin, "write": write}
    if len(argv) != 3 or argv[1] not in commands:
        print(__doc__, file=sys.stderr)
        return 64
    return commands[argv[1]](Path(argv[2]).resolve())


if __name__ == "__main__":
    sys.exit(main(sys.argv))
