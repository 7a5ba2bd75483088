"""Both objectives a spec builds are one :class:`StudyObjective`: blocks, genes, epoch hook."""

from __future__ import annotations

from pathlib import Path

import optuna

from biotune_optuna.plan import plan_search_space
from biotune_optuna.studies import build_objective
from biotune_optuna.studies import load_spec
from biotune_optuna.studies._synthetic import SyntheticFineTuning
from biotune_optuna.trials import StudyObjective
from tests.cli._specs import tiny_spec
from tests.conftest import copy_spec


def test_the_synthetic_objective_exposes_its_genes_as_its_search_space() -> None:
    objective = SyntheticFineTuning(n_blocks=4, seed=1)
    assert objective.search_space == plan_search_space(objective.blocks)
    assert list(objective.search_space) == objective.param_names
    assert objective.on_epoch is None


def test_the_synthetic_objective_of_one_epoch_never_calls_on_epoch() -> None:
    objective = SyntheticFineTuning(n_blocks=3)
    calls: list[int] = []
    objective.on_epoch = lambda trial, epoch, value: calls.append(epoch)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(0))
    study.optimize(objective, n_trials=2)
    assert calls == [] and len(study.trials) == 2
    assert study.trials[0].distributions == objective.search_space


def test_build_objective_returns_a_study_objective_of_either_kind(tmp_path: Path) -> None:
    synthetic = build_objective(load_spec(copy_spec("synthetic", tmp_path)))
    finetune = build_objective(load_spec(tiny_spec(tmp_path)))
    for objective in (synthetic, finetune):
        assert isinstance(objective, StudyObjective)
        assert objective.search_space == plan_search_space(objective.blocks)
    assert isinstance(synthetic, SyntheticFineTuning)
    assert type(finetune).__name__ == "FineTuneObjective"


def test_a_spec_with_checkpoints_gives_its_objective_a_bounded_store(tmp_path: Path) -> None:
    spec_path = tiny_spec(tmp_path)
    text = spec_path.read_text().replace(
        'artifacts = "artifacts"',
        'artifacts = "artifacts"\ncheckpoints = "ckpt"\ncheckpoint_mb = 8',
    )
    spec_path.write_text(text)
    spec = load_spec(spec_path)
    assert spec.checkpoints == (tmp_path / "ckpt").resolve() and spec.checkpoint_mb == 8
    objective = build_objective(spec)
    assert objective.checkpoints is not None
    assert objective.checkpoints.directory == spec.checkpoints
    assert objective.checkpoints.max_bytes == 8 * 2**20
    assert build_objective(load_spec(tiny_spec(tmp_path))).checkpoints is None  # off by default
