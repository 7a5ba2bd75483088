"""Runs BioTune trials on a stored study in its own process (used by the resume/parallel tests).

Usage: python study_worker.py STORAGE STUDY_NAME N_TRIALS SEED [PRESET]

STORAGE is any URL biotune-optuna opens (sqlite:///, journal:///, postgresql://). Prints the
numbers of the trials this worker ran, as JSON, on its last line. PRESET is a registry name
(``biotune``, the default, or ``biotune-plus``).
"""

from __future__ import annotations

import argparse
import json
import logging

import optuna

from biotune_optuna.samplers._registry import create_sampler
from biotune_optuna.studies._storage import open_storage
from biotune_optuna.studies._synthetic import SyntheticFineTuning


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("storage")
    parser.add_argument("study_name")
    parser.add_argument("n_trials", type=int)
    parser.add_argument("seed", type=int)
    parser.add_argument("preset", nargs="?", default="biotune")
    args = parser.parse_args()
    optuna.logging.set_verbosity(logging.WARNING)
    study = optuna.create_study(
        storage=open_storage(args.storage, heartbeat_interval=10),
        study_name=args.study_name,
        sampler=create_sampler(args.preset, seed=args.seed),
        direction="maximize",
        load_if_exists=True,
    )
    ran: list[int] = []
    study.optimize(
        SyntheticFineTuning(seed=0),
        n_trials=args.n_trials,
        callbacks=[lambda study, trial: ran.append(trial.number)],
    )
    print(json.dumps(ran))


if __name__ == "__main__":
    main()
