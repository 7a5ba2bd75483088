"""The ``biotune-optuna`` command line: run, inspect, compare, retrain and browse studies.

Every command takes a study spec (a TOML file, see ``studies/demo.toml``). ``--sampler`` and
``--seed`` select a sibling study of the spec (``<name>-<sampler>``, ``-seed<k>``), so that the
same spec runs under every sampler and seed and ``compare`` finds them all.

Exit codes: 0 success, 2 bad input (nothing written), 1 any other failure.

The commands are data: ``_commands.COMMANDS`` has one row per command (its name, help and
description, and its module), and :func:`build_parser` builds the parser from the rows. Each
command's module (``_run``, ``_status``, ``_best``, ``_compare``, ``_retrain``, ``_predict``,
``_baselines``, ``_record``, ``_dashboard``) gives only its own arguments
(``add_arguments``) and its handler (``handle``); ``_common`` holds what they share,
``_main`` the exit codes, ``_progress``, ``_interrupt`` and ``_workers`` what ``run`` is made
of.
"""

from biotune_optuna.cli._commands import build_parser
from biotune_optuna.cli._main import main


__all__ = ["build_parser", "main"]
