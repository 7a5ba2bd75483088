"""Samplers by name, so that one fine-tuning objective runs under any of them.

BioTune (arXiv:2508.15367) is compared against the samplers Optuna ships. Each is built with
Optuna 5's defaults unless options say otherwise; those defaults are stated in
:data:`SAMPLERS` so that comparisons say exactly what they ran.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from typing import Any
import warnings

import optuna
from optuna.distributions import BaseDistribution

from biotune_optuna.samplers._sampler import BioTuneSampler


__all__ = [
    "GENE_SAMPLERS",
    "SAMPLERS",
    "SPEC_OPTIONS",
    "check_option",
    "create_sampler",
    "sampler_name",
    "sampler_options",
    "type_problem",
]


def _biotune(seed: int | None, space: dict[str, BaseDistribution] | None, **kw: Any) -> Any:
    return BioTuneSampler(seed=seed, search_space=space, **kw)


def _random(seed: int | None, space: dict[str, BaseDistribution] | None, **kw: Any) -> Any:
    return optuna.samplers.RandomSampler(seed=seed, **kw)


def _qmc(seed: int | None, space: dict[str, BaseDistribution] | None, **kw: Any) -> Any:
    kw.setdefault("scramble", True)  # else every seed draws the same sequence
    with warnings.catch_warnings():  # experimental since Optuna 3.0; stated in SAMPLERS
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.QMCSampler(seed=seed, **kw)


def _tpe(seed: int | None, space: dict[str, BaseDistribution] | None, **kw: Any) -> Any:
    return optuna.samplers.TPESampler(seed=seed, **kw)


def _cmaes(seed: int | None, space: dict[str, BaseDistribution] | None, **kw: Any) -> Any:
    return optuna.samplers.CmaEsSampler(seed=seed, **kw)


def _gp(seed: int | None, space: dict[str, BaseDistribution] | None, **kw: Any) -> Any:
    return optuna.samplers.GPSampler(seed=seed, **kw)


def _grid(seed: int | None, space: dict[str, BaseDistribution] | None, **kw: Any) -> Any:
    choices = {}
    for name, dist in (space or {}).items():
        if not isinstance(dist, optuna.distributions.CategoricalDistribution):
            raise ValueError(f"the grid sampler enumerates choices; {name!r} is {dist}")
        choices[name] = list(dist.choices)
    if not choices:
        raise ValueError(
            "the grid sampler enumerates a strategy's categorical hyperparameters "
            "(search space given when the study opens); BioTune's genes are continuous"
        )
    return optuna.samplers.GridSampler(choices, seed=seed, **kw)


def _nsgaii(seed: int | None, space: dict[str, BaseDistribution] | None, **kw: Any) -> Any:
    return optuna.samplers.NSGAIISampler(seed=seed, **kw)


#: Name → (factory, sampler class, what the defaults are). The classes are used to validate
#: options and to recognise a sampler by name.
SAMPLERS: dict[str, tuple[Callable[..., Any], type, str]] = {
    "biotune": (
        _biotune,
        BioTuneSampler,
        "BioTuneSampler: the paper's preset (N=10, E=3) with the objective's gene space",
    ),
    "random": (_random, optuna.samplers.RandomSampler, "RandomSampler: uniform genes"),
    "qmc": (
        _qmc,
        optuna.samplers.QMCSampler,
        "QMCSampler(qmc_type='sobol', scramble=True): a scrambled Sobol sequence, "
        "so that seeds differ (Optuna's default is unscrambled)",
    ),
    "tpe": (
        _tpe,
        optuna.samplers.TPESampler,
        "TPESampler, Optuna 5 defaults: multivariate=True, constant_liar=True, "
        "n_startup_trials=10, n_ei_candidates=24",
    ),
    "cmaes": (
        _cmaes,
        optuna.samplers.CmaEsSampler,
        "CmaEsSampler, Optuna 5 defaults: sigma0 = 1/6 of the range, n_startup_trials=1",
    ),
    "gp": (
        _gp,
        optuna.samplers.GPSampler,
        "GPSampler, Optuna 5 defaults: log EI, n_startup_trials=10 (needs torch)",
    ),
    "nsgaii": (
        _nsgaii,
        optuna.samplers.NSGAIISampler,
        "NSGAIISampler, Optuna 5 defaults: population_size=50, crossover=UniformCrossover",
    ),
    "grid": (
        _grid,
        optuna.samplers.GridSampler,
        "GridSampler: every combination of a strategy's categorical hyperparameters once "
        "(e.g. surgical fine-tuning's block), in a seeded order; not for BioTune's genes",
    ),
}

#: The samplers that search BioTune's (continuous) genes.
GENE_SAMPLERS = tuple(name for name in SAMPLERS if name != "grid")


_COMMON_TPE_CMA = {"n_startup_trials": int, "warn_independent_sampling": bool}

#: The options a study spec may set per sampler, with their types: the constructor arguments
#: that take plain values (operators and callables are for the Python API).
SPEC_OPTIONS: dict[str, dict[str, type]] = {
    "biotune": {
        "population_size": int,
        "n_elites": int,
        "momentum": float,
        "mutate_first_generation": bool,
        "reevaluate_elites": bool,
        "ideal_value": float,
    },
    "random": {},
    "qmc": {"qmc_type": str, "scramble": bool, "warn_independent_sampling": bool},
    "tpe": {
        **_COMMON_TPE_CMA,
        "n_ei_candidates": int,
        "multivariate": bool,
        "group": bool,
        "constant_liar": bool,
        "consider_endpoints": bool,
        "prior_weight": float,
    },
    "cmaes": {
        **_COMMON_TPE_CMA,
        "sigma0": float,
        "popsize": int,
        "use_separable_cma": bool,
        "with_margin": bool,
        "lr_adapt": bool,
    },
    "gp": {"n_startup_trials": int, "deterministic_objective": bool},
    "nsgaii": {
        "population_size": int,
        "mutation_prob": float,
        "crossover_prob": float,
        "swapping_prob": float,
    },
    "grid": {},
}


def sampler_options(name: str) -> dict[str, type]:
    """The plain-valued options of a sampler that a study spec may set, with their types."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; choose from {', '.join(SAMPLERS)}")
    return SPEC_OPTIONS[name]


def check_option(name: str, key: str, value: Any) -> str | None:
    """Why ``value`` is not a valid plain option ``key`` of sampler ``name`` (``None``: valid)."""
    kinds = sampler_options(name)
    if key not in kinds:
        return f"sampler {name!r} takes no option {key!r}; it takes {', '.join(kinds) or 'none'}"
    return type_problem(value, kinds[key])


def type_problem(value: Any, kind: type) -> str | None:
    """Why ``value`` is not of plain type ``kind`` (ints pass as floats, bools never as ints)."""
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    else:
        ok = isinstance(value, kind)
    if ok:
        return None
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    return f"expected {names.get(kind, kind.__name__)}, got {value!r}"


def create_sampler(
    name: str,
    *,
    seed: int | None = None,
    search_space: dict[str, BaseDistribution] | None = None,
    options: Mapping[str, Any] | None = None,
) -> optuna.samplers.BaseSampler:
    """Build a sampler by name: ``biotune``, ``random``, ``qmc``, ``tpe``, ``cmaes``, ``gp``
    or ``nsgaii``.

    Args:
        name: The sampler's name (see :data:`SAMPLERS`).
        seed: Seed of the sampler.
        search_space: The objective's genes; BioTune samples them jointly from the first trial,
            the others infer the space from completed trials as usual.
        options: Keyword arguments of the sampler's constructor, the plain-valued ones of
            :data:`SPEC_OPTIONS` (as they come from a study spec).

    Returns:
        The sampler.

    Raises:
        ValueError: On an unknown name or option, or an option the sampler rejects.
    """
    sampler_options(name)  # unknown name: ValueError
    options = dict(options or {})
    for key, value in options.items():
        problem = check_option(name, key, value)
        if problem:
            raise ValueError(f"sampler option {key!r}: {problem}")
    factory = SAMPLERS[name][0]
    try:
        return factory(seed, search_space, **options)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"sampler {name!r}: {exc}") from None


def sampler_name(sampler: optuna.samplers.BaseSampler) -> str | None:
    """The registry name of a sampler instance (``None`` for samplers not in the registry)."""
    for name, (_, cls, _) in SAMPLERS.items():
        if type(sampler) is cls:
            return name
    for name, (_, cls, _) in SAMPLERS.items():
        if isinstance(sampler, cls):
            return name
    return None
