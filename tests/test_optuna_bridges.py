"""Optuna's private API is reached through one bridge module per layer, and every name a
bridge uses still exists in the installed Optuna (``pyproject.toml`` allows any 5.x)."""

from __future__ import annotations

from collections.abc import Callable
import importlib
from pathlib import Path
import re
import types
from typing import Any

import optuna
from optuna.storages import RDBStorage
from optuna.storages.journal import JournalFileBackend
import pytest

from biotune_optuna.finetune import _optuna_bridge as finetune_bridge
from biotune_optuna.studies import _optuna_bridge as studies_bridge


ROOT = Path(__file__).resolve().parents[1]
BRIDGES = (finetune_bridge, studies_bridge)
#: Optuna's private modules, imported anywhere in a layer (the bridge excepted).
PRIVATE_IMPORT = re.compile(r"^\s*(from|import) optuna(\.\w+)*\._\w+", re.M)
#: Optuna's private attributes, read anywhere in a layer (the bridge excepted).
#: (``biotune_optuna.studies._storage`` is our own module, not Optuna's attribute.)
PRIVATE_ATTRIBUTE = re.compile(
    r"(?<!biotune_optuna\.studies)\.(_storage|_study_id|_trial_id|_backend)\b(?!\s*=)"
)


def _instances(tmp_path: Path) -> dict[str, Callable[[], Any]]:
    """An object of each class whose private attributes a bridge reads, made on demand."""
    study = optuna.create_study()
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    return {
        "Study": lambda: study,
        "Trial": study.ask,
        "FrozenTrial": lambda: study.trials[0],
        "_CachedStorage": lambda: optuna.storages.get_storage(f"sqlite:///{tmp_path / 'c.db'}"),
        "JournalFileBackend": lambda: JournalFileBackend(str(tmp_path / "j.log")),
        "BaseHeartbeat": lambda: studies_bridge.BaseHeartbeat,
        "RDBStorage": lambda: RDBStorage,
    }


def missing_names(bridge: types.ModuleType, tmp_path: Path) -> list[str]:
    """The private names and attributes ``bridge`` lists that the installed Optuna lacks."""
    missing = []
    for entry in bridge.PRIVATE_NAMES:
        module, _, name = entry.partition(":")
        try:
            found = hasattr(importlib.import_module(module), name)
        except ImportError:
            found = False
        if not found:
            missing.append(entry)
    instances = _instances(tmp_path)
    for entry in bridge.PRIVATE_ATTRIBUTES:
        owner, _, attribute = entry.partition(".")
        if not hasattr(instances[owner](), attribute):
            missing.append(entry)
    return missing


@pytest.mark.parametrize("bridge", BRIDGES, ids=lambda b: b.__name__)
def test_every_private_name_a_bridge_uses_exists_in_the_installed_optuna(
    bridge: types.ModuleType, tmp_path: Path
) -> None:
    missing = missing_names(bridge, tmp_path)
    if missing:
        pytest.fail(
            f"{bridge.__name__}: Optuna {optuna.__version__} has no {', '.join(missing)}; "
            f"update {bridge.__name__} (and only it) to the new private API",
            pytrace=False,
        )


def test_the_check_names_the_bridge_and_the_version_when_a_name_is_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        studies_bridge,
        "PRIVATE_NAMES",
        (*studies_bridge.PRIVATE_NAMES, "optuna.storages.journal._file:GoneLock"),
    )
    monkeypatch.setattr(finetune_bridge, "PRIVATE_ATTRIBUTES", ("Trial._gone_id",))
    assert missing_names(studies_bridge, tmp_path) == ["optuna.storages.journal._file:GoneLock"]
    assert missing_names(finetune_bridge, tmp_path) == ["Trial._gone_id"]
    with pytest.raises(pytest.fail.Exception) as failure:
        test_every_private_name_a_bridge_uses_exists_in_the_installed_optuna(
            studies_bridge, tmp_path
        )
    message = str(failure.value)
    assert message.startswith("biotune_optuna.studies._optuna_bridge: Optuna ")
    assert f"Optuna {optuna.__version__} has no optuna.storages.journal._file:GoneLock" in message


@pytest.mark.parametrize("layer", ["finetune", "studies"])
def test_no_module_of_a_layer_but_its_bridge_touches_optunas_private_api(layer: str) -> None:
    offences = []
    for path in sorted((ROOT / "biotune_optuna" / layer).glob("*.py")):
        if path.name == "_optuna_bridge.py":
            continue
        text = path.read_text()
        for match in (*PRIVATE_IMPORT.finditer(text), *PRIVATE_ATTRIBUTE.finditer(text)):
            line = text.count("\n", 0, match.start()) + 1
            offences.append(f"{path.relative_to(ROOT)}:{line} {match.group(0).strip()}")
    assert offences == []
