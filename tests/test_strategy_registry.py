"""The strategy registry (imports without torch): one registration per strategy, one config."""

from __future__ import annotations

from collections.abc import Iterator
import dataclasses
import subprocess
import sys

from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
import pytest

from biotune_optuna.finetune._registry import BaselineConfig
from biotune_optuna.finetune._registry import grid_size
from biotune_optuna.finetune._registry import hyperparameter
from biotune_optuna.finetune._registry import LoRAConfig
from biotune_optuna.finetune._registry import register_strategy
from biotune_optuna.finetune._registry import search_space
from biotune_optuna.finetune._registry import searches_choices_only
from biotune_optuna.finetune._registry import STRATEGIES
from biotune_optuna.finetune._registry import strategy_settings
from biotune_optuna.finetune._registry import StrategyInfo


NAME = "test_registry_width"


@dataclasses.dataclass(frozen=True, kw_only=True)
class WidthConfig(BaselineConfig):
    """A strategy of this test: a width among three, a scale with a range."""

    width: int = hyperparameter(2, CategoricalDistribution((1, 2, 3)), "a width")
    scale: float = hyperparameter(0.5, FloatDistribution(0.1, 1.0), "a scale")


@pytest.fixture
def registered() -> Iterator[StrategyInfo]:
    info = register_strategy(
        NAME,
        title="Width",
        description="a strategy only this test registers",
        config=WidthConfig,
        search=("width",),
    )
    try:
        yield info
    finally:
        del STRATEGIES[NAME]


def test_a_registered_strategy_is_checked_and_searched_like_the_others(
    registered: StrategyInfo,
) -> None:
    assert STRATEGIES[NAME] is registered and list(registered.hyperparameters) == [
        "lr",
        "width",
        "scale",
    ]
    width = registered.hyperparameters["width"]
    assert (width.default, width.kind, width.help) == (2, int, "a width")
    assert strategy_settings(NAME, {"scale": 0.25}) == ({"scale": 0.25}, ("width",))
    assert strategy_settings(NAME, {"width": 3}) == ({"width": 3}, ())
    with pytest.raises(ValueError, match=r"^scale: must be a positive number, got -1\.0$"):
        strategy_settings(NAME, {"scale": -1.0})
    with pytest.raises(ValueError, match=r"^width: expected an integer, got 'wide'$"):
        strategy_settings(NAME, {"width": "wide"})
    with pytest.raises(ValueError, match="takes no hyperparameter 'rank'; it takes lr, width"):
        strategy_settings(NAME, {"rank": 4})
    assert search_space(NAME, ("width",), blocks=("a",)) == {
        "width": CategoricalDistribution((1, 2, 3))
    }
    assert searches_choices_only(NAME, ("width",)) and not searches_choices_only(NAME, ("scale",))
    assert grid_size(search_space(NAME, ("width",), blocks=())) == 3
    assert grid_size(search_space(NAME, ("width", "scale"), blocks=())) == 0 == grid_size({})


def test_a_registered_config_needs_no_implementation_until_it_is_built(
    registered: StrategyInfo,
) -> None:
    assert registered.implementation is None  # its class attaches where it is defined


def test_bad_registrations_are_refused(registered: StrategyInfo) -> None:
    base = dict(title="T", description="d", config=WidthConfig)
    with pytest.raises(ValueError, match=f"strategy {NAME!r} is already registered"):
        register_strategy(NAME, **base)
    with pytest.raises(TypeError, match="its implementation must be a class"):
        register_strategy("other", **base, implementation="m:C")
    with pytest.raises(ValueError, match="search names no hyperparameter 'depth'"):
        register_strategy("other", **base, search=("depth",))
    with pytest.raises(TypeError, match="its config must be a dataclass of BaselineConfig"):
        register_strategy("other", **{**base, "config": dict})

    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Plain(BaselineConfig):
        depth: int = 3

    with pytest.raises(TypeError, match=r"Plain\.depth: declare it with hyperparameter"):
        register_strategy("other", **{**base, "config": Plain})
    assert "other" not in STRATEGIES


def test_the_registry_reads_each_default_once_from_its_config() -> None:
    lora = STRATEGIES["lora"]
    assert lora.config is LoRAConfig and LoRAConfig().rank == 8
    assert lora.hyperparameters["rank"].default == 8
    for info in STRATEGIES.values():
        defaults = {k: h.default for k, h in info.hyperparameters.items()}
        assert dataclasses.asdict(info.config()) == defaults, info.name


def test_the_registry_imports_and_registers_without_torch() -> None:
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import biotune_optuna.finetune as facade\n"
        "from biotune_optuna.finetune import _protocol, _registry as s\n"
        "for name in s.STRATEGIES:\n"
        "    given, search = s.strategy_settings(name, {})\n"
        "    s.search_space(name, search, blocks=('a', 'b'))\n"
        "facade.register_strategy('x', title='X', description='x', config=s.LoRAConfig)\n"
        "assert facade.TrainingProtocol().n_seeds == 3\n"
        "assert _protocol.device_problem('cpu') is None\n"
        "heavy = ('torch', 'timm', 'peft')\n"
        "assert not [m for m, v in sys.modules.items() if v and m.startswith(heavy)]\n"
        "assert 'biotune_optuna.finetune._strategies' not in sys.modules\n"
        "print(s.grid_size(s.search_space('surgical', ('block',), blocks=('a', 'b'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "2"
