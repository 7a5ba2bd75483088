"""Runs BioTune trials on a stored study in its own process (used by the resume/parallel tests).

Usage: python study_worker.py STORAGE STUDY_NAME N_TRIALS SEED [--fail-every K]
"""

from __future__ import annotations

import argparse
import logging

import optuna

from biotune_optuna import BioTuneSampler
from biotune_optuna.synthetic import SyntheticFineTuning


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("storage")
    parser.add_argument("study_name")
    parser.add_argument("n_trials", type=int)
    parser.add_argument("seed", type=int)
    args = parser.parse_args()
    optuna.logging.set_verbosity(logging.WARNING)
    storage = optuna.storages.RDBStorage(
        args.storage, engine_kwargs={"connect_args": {"timeout": 60}}
    )
    study = optuna.create_study(
        storage=storage,
        study_name=args.study_name,
        sampler=BioTuneSampler(seed=args.seed),
        direction="maximize",
        load_if_exists=True,
    )
    study.optimize(SyntheticFineTuning(seed=0), n_trials=args.n_trials)


if __name__ == "__main__":
    main()
