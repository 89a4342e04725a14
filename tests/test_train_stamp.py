"""`make train` retrains when the model's inputs changed, also when they changed while it was training."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SPEC = importlib.util.spec_from_file_location("train_stamp", Path(__file__).parents[1] / "scripts" / "train_stamp.py")
assert SPEC and SPEC.loader
train_stamp = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(train_stamp)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "domain.yml").write_text("responses: {}\n", encoding="utf-8")
    (tmp_path / "models").mkdir()
    monkeypatch.setattr(train_stamp, "ROOT", tmp_path)
    monkeypatch.setattr(train_stamp, "MODEL_INPUTS", ["domain.yml"])
    monkeypatch.setattr(train_stamp, "FORCE_INPUTS", [])
    return tmp_path


def test_a_file_edited_while_the_model_trains_makes_the_next_make_train_retrain(project: Path) -> None:
    model = project / "models" / "weiquan.tar.gz"
    assert train_stamp.check(model) == 1  # no model yet
    train_stamp.begin(model)
    (project / "domain.yml").write_text("responses: {utter_new: []}\n", encoding="utf-8")  # edited mid-training
    model.write_bytes(b"model")
    train_stamp.write(model)
    assert train_stamp.check(model) == 1


def test_nothing_changed_since_the_training_began_keeps_the_model(project: Path) -> None:
    model = project / "models" / "weiquan.tar.gz"
    train_stamp.begin(model)
    model.write_bytes(b"model")
    train_stamp.write(model)
    assert train_stamp.check(model) == 0
    assert not train_stamp.pending_path(model).exists()
