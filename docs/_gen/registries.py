"""Every registry the documentation reads, in one place.

The site's generated pages (:mod:`options`, :mod:`cli`) get the parser and the registries only
through these names, so a registry that moves changes the imports here and nowhere else.
"""

from __future__ import annotations

import argparse

from biotune_optuna.cli import build_parser
from biotune_optuna.finetune._registry import STRATEGIES
from biotune_optuna.samplers import PRUNERS
from biotune_optuna.samplers import SAMPLERS
from biotune_optuna.samplers._registry import SPEC_OPTIONS


__all__ = ["PRUNERS", "SAMPLERS", "SPEC_OPTIONS", "STRATEGIES", "parser"]


def parser() -> argparse.ArgumentParser:
    """The ``biotune-optuna`` parser, as the command builds it."""
    return build_parser()
