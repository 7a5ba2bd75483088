"""Samplers and pruners by name, so that one fine-tuning objective runs under any of them.

BioTune (arXiv:2508.15367) is compared against the samplers Optuna ships. Each is built with
Optuna 5's defaults unless options say otherwise; those defaults are stated in
:data:`SAMPLERS` so that comparisons say exactly what they ran. The pruners a spec may name
are in :data:`PRUNERS`; the paper trains every plan to its end, so a spec's default is
``"none"`` (Optuna's own default, :class:`~optuna.pruners.MedianPruner`, would stop many GA
trials after their first epoch).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from typing import Any
import warnings

import optuna
from optuna.distributions import BaseDistribution

from biotune_optuna.options import Option
from biotune_optuna.samplers._offspring import SURROGATES
from biotune_optuna.samplers._plus import BioTunePlusSampler
from biotune_optuna.samplers._rungs import RungPruner
from biotune_optuna.samplers._sampler import BioTuneSampler
from biotune_optuna.samplers._schedule import SCHEDULE_OPTIONS


__all__ = [
    "BIOTUNE_PRESETS",
    "GENE_SAMPLERS",
    "PRUNERS",
    "SAMPLERS",
    "SPEC_OPTIONS",
    "PrunerRegistry",
    "SamplerRegistry",
    "check_option",
    "check_pruner_option",
    "create_pruner",
    "create_sampler",
    "sampler_name",
    "sampler_options",
]


def _biotune(seed: int | None, space: dict[str, BaseDistribution] | None, **kw: Any) -> Any:
    return BioTuneSampler(seed=seed, search_space=space, **kw)


def _biotune_plus(seed: int | None, space: dict[str, BaseDistribution] | None, **kw: Any) -> Any:
    return BioTunePlusSampler(seed=seed, search_space=space, **kw)


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
    if not choices:  # which searches fit a grid: biotune_optuna.studies._spec.sampler_problem
        raise ValueError("the grid sampler needs the categorical search space it enumerates")
    return optuna.samplers.GridSampler(choices, seed=seed, **kw)


def _nsgaii(seed: int | None, space: dict[str, BaseDistribution] | None, **kw: Any) -> Any:
    return optuna.samplers.NSGAIISampler(seed=seed, **kw)


class SamplerRegistry(dict[str, tuple[Callable[..., Any], type, str]]):
    """Every sampler a study spec may name: name → (factory, class, what its defaults are).

    The registry also answers for a spec's options (:meth:`check_option`), builds a sampler by
    name (:meth:`create`) and names a sampler instance (:meth:`name_of`).
    """

    #: The names of :class:`BioTuneSampler` presets: the paper's and the improved one.
    presets = ("biotune", "biotune-plus")

    def options(self, name: str) -> dict[str, Option]:
        """The plain-valued options of sampler ``name`` that a study spec may set."""
        return sampler_options(name)

    def check_option(self, name: str, key: str, value: Any) -> str | None:
        """Why ``value`` is not a valid option ``key`` of sampler ``name`` (``None``: valid)."""
        return check_option(name, key, value)

    def create(
        self,
        name: str,
        *,
        seed: int | None = None,
        search_space: dict[str, BaseDistribution] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> optuna.samplers.BaseSampler:
        """Build sampler ``name`` (see :func:`create_sampler`)."""
        return create_sampler(name, seed=seed, search_space=search_space, options=options)

    def name_of(self, sampler: optuna.samplers.BaseSampler) -> str | None:
        """The registry name of a sampler instance (``None``: not in the registry)."""
        return sampler_name(sampler)


class PrunerRegistry(dict[str, tuple[type, dict[str, Option]]]):
    """Every pruner a study spec may name: name → (class, its options with their values)."""

    def check_option(self, name: str, key: str, value: Any) -> str | None:
        """Why ``value`` is not a valid option ``key`` of pruner ``name`` (``None``: valid)."""
        return check_pruner_option(name, key, value)

    def create(
        self, name: str, options: Mapping[str, Any] | None = None
    ) -> optuna.pruners.BasePruner:
        """Build pruner ``name`` (see :func:`create_pruner`)."""
        return create_pruner(name, options)


#: Name → (factory, sampler class, what the defaults are). The classes are used to validate
#: options and to recognise a sampler by name.
SAMPLERS = SamplerRegistry(
    {
        "biotune": (
            _biotune,
            BioTuneSampler,
            "BioTuneSampler: the paper's preset (N=10, E=3) with the objective's gene space",
        ),
        "biotune-plus": (
            _biotune_plus,
            BioTunePlusSampler,
            "BioTunePlusSampler: the paper's GA (N=10, E=3) with no repeated configurations, "
            "adaptive multi-gene exploitation with block toggles, 24 bred and 24 drawn candidates "
            "per child ranked by a Gaussian process over the plans (expected improvement), "
            "and a mutated first generation",
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
)

#: The registry names of :class:`BioTuneSampler` presets: the paper's and the improved one.
BIOTUNE_PRESETS = SamplerRegistry.presets
#: The samplers that search BioTune's (continuous) genes.
GENE_SAMPLERS = tuple(name for name in SAMPLERS if name != "grid")


_AT_LEAST_0 = Option(int, 0)
_AT_LEAST_1 = Option(int, 1)
_AT_LEAST_2 = Option(int, 2)
_PROBABILITY = Option(float, 0.0, 1.0)
_POSITIVE = Option(float, 0.0, above=True)
_FLAG = Option(bool)
_BIOTUNE_OPTIONS = {
    **SCHEDULE_OPTIONS,
    "momentum": Option(float, 0.0),
    "mutate_first_generation": _FLAG,
    "reevaluate_elites": _FLAG,
    "ideal_value": Option(float),
    "avoid_duplicates": _FLAG,
    "duplicate_tolerance": Option(float, 0.0, 0.5),
    "surrogate_candidates": _AT_LEAST_0,
    "sampled_candidates": _AT_LEAST_0,
    "rank_pruned_by_rung": _FLAG,
    "warm_start": Option(list),
}
_COMMON_TPE_CMA = {"n_startup_trials": _AT_LEAST_0, "warn_independent_sampling": _FLAG}

#: The options a study spec may set per sampler: the constructor arguments that take plain
#: values (operators and callables are for the Python API), with their types and the values
#: that the samplers use as documented (Optuna checks some of them only when sampling, some
#: never: a negative ``n_startup_trials`` or a ``sigma0`` of 0 is taken silently).
SPEC_OPTIONS: dict[str, dict[str, Option]] = {
    "biotune": _BIOTUNE_OPTIONS,
    "biotune-plus": {
        **_BIOTUNE_OPTIONS,
        "adaptive_exploitation": _FLAG,
        "toggle_blocks": _FLAG,
        "surrogate": Option(str, choices=SURROGATES),
        "exploitation_candidates": _AT_LEAST_0,
        "surrogate_paused": _FLAG,
    },
    "random": {},
    "qmc": {
        "qmc_type": Option(str, choices=("sobol", "halton")),
        "scramble": _FLAG,
        "warn_independent_sampling": _FLAG,
    },
    "tpe": {
        **_COMMON_TPE_CMA,
        "n_ei_candidates": _AT_LEAST_1,
        "multivariate": _FLAG,
        "group": _FLAG,
        "constant_liar": _FLAG,
        "consider_endpoints": _FLAG,
        "prior_weight": _POSITIVE,
    },
    "cmaes": {
        **_COMMON_TPE_CMA,
        "sigma0": _POSITIVE,
        "popsize": _AT_LEAST_2,  # CMA-ES recombines the best popsize // 2
        "use_separable_cma": _FLAG,
        "with_margin": _FLAG,
        "lr_adapt": _FLAG,
    },
    "gp": {"n_startup_trials": _AT_LEAST_0, "deterministic_objective": _FLAG},
    "nsgaii": {
        "population_size": _AT_LEAST_2,
        "mutation_prob": _PROBABILITY,
        "crossover_prob": _PROBABILITY,
        "swapping_prob": _PROBABILITY,
    },
    "grid": {},
}


def sampler_options(name: str) -> dict[str, Option]:
    """The plain-valued options of a sampler that a study spec may set, with their values."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; choose from {', '.join(SAMPLERS)}")
    return SPEC_OPTIONS[name]


def check_option(name: str, key: str, value: Any) -> str | None:
    """Why ``value`` is not a valid plain option ``key`` of sampler ``name`` (``None``: valid)."""
    options = sampler_options(name)
    if key not in options:
        return f"sampler {name!r} takes no option {key!r}; it takes {', '.join(options) or 'none'}"
    return options[key].problem(value)


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


_REDUCTION = Option(int, 2)  # a factor of 1 never promotes nor stops anything
_STEPS = {"n_warmup_steps": _AT_LEAST_0, "interval_steps": _AT_LEAST_1}
_WARMUP = {"n_startup_trials": _AT_LEAST_0, **_STEPS, "n_min_trials": _AT_LEAST_1}

#: Name → (pruner class, the options a spec may set with their types and values). Optuna
#: checks some of these itself, not all: a threshold of NaN never prunes, and Hyperband
#: takes a ``reduction_factor`` of 1 or a ``min_resource`` of 0 without a word.
PRUNERS = PrunerRegistry(
    {
        "none": (optuna.pruners.NopPruner, {}),
        "median": (optuna.pruners.MedianPruner, _WARMUP),
        "percentile": (
            optuna.pruners.PercentilePruner,
            {**_WARMUP, "percentile": Option(float, 0.0, 100.0)},
        ),
        "successive_halving": (
            optuna.pruners.SuccessiveHalvingPruner,
            {
                "min_resource": _AT_LEAST_1,
                "reduction_factor": _REDUCTION,
                "min_early_stopping_rate": _AT_LEAST_0,
            },
        ),
        "hyperband": (
            optuna.pruners.HyperbandPruner,
            {
                "min_resource": _AT_LEAST_1,
                "max_resource": _AT_LEAST_1,
                "reduction_factor": _REDUCTION,
            },
        ),
        "rungs": (
            RungPruner,
            {
                "max_resource": _AT_LEAST_1,
                "reduction_factor": _AT_LEAST_2,
                "min_resource": _AT_LEAST_1,
            },
        ),
        "threshold": (
            optuna.pruners.ThresholdPruner,
            {"lower": Option(float), "upper": Option(float), **_STEPS},
        ),
    }
)


def check_pruner_option(name: str, key: str, value: Any) -> str | None:
    """Why ``value`` is not a valid option ``key`` of pruner ``name`` (``None``: valid)."""
    options = PRUNERS[name][1]
    if key not in options:
        return f"pruner {name!r} takes no option {key!r}; it takes {', '.join(options) or 'none'}"
    return options[key].problem(value)


def create_pruner(
    name: str, options: Mapping[str, Any] | None = None
) -> optuna.pruners.BasePruner:
    """Build a pruner by name (see :data:`PRUNERS`).

    Raises:
        ValueError: On an unknown name or option, or a value the pruner rejects.
    """
    if name not in PRUNERS:
        raise ValueError(f"unknown pruner {name!r}; choose from {', '.join(PRUNERS)}")
    options = dict(options or {})
    for key, value in options.items():
        problem = check_pruner_option(name, key, value)
        if problem:
            raise ValueError(f"pruner option {key!r}: {problem}")
    try:
        return PRUNERS[name][0](**options)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"pruner {name!r}: {exc}") from None
