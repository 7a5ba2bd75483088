"""Study specs: the shipped ones parse, and every mistake is one line naming file and key."""

from __future__ import annotations

from pathlib import Path
import sys

import pytest

from biotune_optuna.studies import load_spec
from biotune_optuna.studies import SpecError
from biotune_optuna.studies._spec import ModelSpec
from biotune_optuna.studies._spec import parse_spec
from biotune_optuna.studies._spec import SyntheticSpec
from tests.conftest import MINIMAL_SPEC as MINIMAL


STUDIES = Path(__file__).resolve().parents[2] / "studies"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(text)
    return path


def test_the_demo_spec_is_the_offline_default() -> None:
    spec = load_spec(STUDIES / "demo.toml")
    assert spec.name == "biotune-lite0-digits"
    assert spec.storage == f"sqlite:///{STUDIES / 'demo.db'}"  # relative to the spec file
    assert spec.sampler == "biotune"
    assert spec.sampler_options == {"population_size": 6, "n_elites": 2}
    assert spec.schedule == (6, 2) and spec.generations == 2 and spec.budget == 22
    assert spec.model == ModelSpec(source="efficientnet_lite0", weights="DEFAULT")
    assert spec.data is not None and spec.data.source == "digits" and not spec.data.download
    assert (spec.protocol.image_size, spec.protocol.max_epochs) == (48, 1)
    assert spec.pruner == "none" and spec.artifacts == STUDIES / "artifacts"


def test_the_synthetic_spec_has_the_papers_budget() -> None:
    spec = load_spec(STUDIES / "synthetic.toml")
    assert spec.objective == "synthetic" and spec.budget == 140 and spec.schedule == (10, 3)


def test_a_state_dict_means_no_weights_to_download(tmp_path: Path) -> None:
    (tmp_path / "w.pt").write_bytes(b"")  # the spec checks that the file is there, not its tensors
    model = "[model]\nsource = 'torchvision:resnet18'\nstate_dict = 'w.pt'\n"
    for weights in ("", "weights = false\n"):
        spec = load_spec(write(tmp_path, MINIMAL + model + weights))
        assert spec.model == ModelSpec(
            source="torchvision:resnet18", weights=None, state_dict=tmp_path / "w.pt"
        )
    spec = load_spec(write(tmp_path, MINIMAL + "[model]\nsource = 'torchvision:resnet18'\n"))
    assert spec.model is not None and spec.model.weights == "DEFAULT"


def test_relative_paths_follow_the_spec_file_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, MINIMAL)
    monkeypatch.chdir("/")
    assert load_spec(path).storage == f"sqlite:///{tmp_path / 's.db'}"
    spec = parse_spec(
        {"study": {"name": "s", "storage": "sqlite:////abs/x.db"}, "budget": {"trials": 1}}
    )
    assert spec.storage == "sqlite:////abs/x.db"


def test_overrides_name_sibling_studies_with_the_same_schedule(tmp_path: Path) -> None:
    spec = load_spec(STUDIES / "demo.toml")
    tpe = spec.with_overrides(sampler="tpe", seed=2, trials=10)
    assert tpe.name == "biotune-lite0-digits-tpe-seed2"
    assert tpe.sampler_options == {} and tpe.schedule == (6, 2)
    assert tpe.budget == 10 and tpe.protocol.seed == 2
    assert spec.with_overrides(generations=1).budget == 14
    assert spec.with_overrides(sampler="biotune", seed=0).name == spec.name
    assert spec.with_overrides(name="mine").name == "mine"
    with pytest.raises(SpecError, match="unknown sampler 'bogus'"):
        spec.with_overrides(sampler="bogus")
    for seed in (-1, 2**32):
        with pytest.raises(SpecError, match=r"--seed must be in \[0, 4294967295\]"):
            spec.with_overrides(seed=seed)


def test_other_samplers_take_the_schedule_from_budget(tmp_path: Path) -> None:
    spec = load_spec(
        write(
            tmp_path,
            MINIMAL.replace("trials = 5", "generations = 3\npopulation_size = 4\nn_elites = 1")
            + '[sampler]\nname = "tpe"\nn_startup_trials = 3\n',
        )
    )
    assert spec.schedule == (4, 1) and spec.budget == 4 + 3 * 5
    assert spec.sampler_options == {"n_startup_trials": 3}
    biotune = spec.with_overrides(sampler="biotune")
    assert biotune.name == "s-biotune" and biotune.budget == spec.budget
    assert biotune.sampler_options == {"population_size": 4, "n_elites": 1}


BAD = [
    # (text appended to or replacing the minimal spec, expected message parts)
    ("[study]\nstorage = 'sqlite:///s.db'\n[budget]\ntrials = 5\n", ["[study] name", "required"]),
    (MINIMAL + "[bogus]\nx = 1\n", ["unknown section [bogus]"]),
    (
        MINIMAL.replace("trials = 5", "trials = 5\nwhatever = 1"),
        ["[budget] whatever", "unknown key"],
    ),
    (MINIMAL.replace("trials = 5", "trials = '5'"), ["[budget] trials", "expected an integer"]),
    (MINIMAL.replace("trials = 5", "trials = 0"), ["[budget] trials", "must be >= 1"]),
    (MINIMAL.replace("trials = 5", "trials = 5\ngenerations = 2"), ["[budget]", "exactly one"]),
    (MINIMAL + "[sampler]\nname = 'annealing'\n", ["[sampler] name", "unknown sampler"]),
    (MINIMAL + "[sampler]\npopulation_size = 0\n", ["[sampler] population_size", ">= 2"]),
    (MINIMAL + "[sampler]\npopulation_size = -3\n", ["[sampler] population_size", ">= 2"]),
    (
        MINIMAL + "[sampler]\npopulation_size = 4\nn_elites = 4\n",
        ["[sampler] n_elites", "below population_size (4)"],
    ),
    (MINIMAL + "[sampler]\nn_elites = 2.5\n", ["[sampler] n_elites", "expected an integer"]),
    (MINIMAL + "[sampler]\nname = 'tpe'\npopulation = 3\n", ["[sampler] population", "takes no"]),
    (MINIMAL + "[sampler]\nname = 'tpe'\nmultivariate = 1\n", ["[sampler] multivariate", "true"]),
    (MINIMAL + "[sampler]\nmomentum = -1.0\n", ["[sampler]", "momentum"]),
    (MINIMAL + "[pruner]\nname = 'median'\nwarmup = 1\n", ["[pruner] warmup", "takes no"]),
    (MINIMAL + "[pruner]\nname = 'early'\n", ["[pruner] name", "unknown pruner"]),
    (MINIMAL + "[model]\nsource = 'resnet50'\n", ["[model] source", "torchvision:<name>"]),
    (MINIMAL + "[model]\nmean = [0.5, 0.5]\n", ["[model] mean", "three numbers"]),
    (MINIMAL + "[model]\nblocks = {a = []}\n", ["[model] blocks.a", "non-empty list"]),
    (
        MINIMAL + "[model]\nsource = 'timm:resnet18'\nstate_dict = 'w.pt'\n",
        ["[model] state_dict", "no such file", "w.pt"],
    ),
    (
        MINIMAL + "[model]\nstate_dict = 'w.pt'\n",
        ["[model] state_dict", "not for 'efficientnet_lite0'"],
    ),
    (
        MINIMAL + "[model]\nsource = 'torchvision:resnet18'\nweights = 'IMAGENET1K_V1'\n"
        "state_dict = 'w.pt'\n",
        ["[model] weights", "'IMAGENET1K_V1' downloads weights that state_dict replaces"],
    ),
    (
        MINIMAL + "[model]\nsource = 'timm:resnet18'\nweights = true\nstate_dict = 'w.pt'\n",
        ["[model] weights", "remove weights"],
    ),
    (MINIMAL + "[data]\nsource = 'imagenet'\n", ["[data] source", "digits"]),
    (MINIMAL + "[data]\nsource = 'torchvision:CIFAR10'\n", ["[data] root", "required"]),
    (MINIMAL + "[data]\nsource = 'folder'\nroot = 'nowhere'\n", ["[data] root", "no such"]),
    (MINIMAL + "[data]\nval_fraction = 1.5\n", ["[data] val_fraction", "[0, 1)"]),
    (MINIMAL + "[data]\nmax_train_images = 0\n", ["[data] max_train_images", ">= 1"]),
    (MINIMAL + "[protocol]\nmax_epochs = 0\n", ["[protocol] max_epochs", ">= 1"]),
    (MINIMAL + "[protocol]\nepochs = 3\n", ["[protocol] epochs", "unknown key"]),
    (MINIMAL + "[protocol]\noptimizer = 'lion'\n", ["[protocol] optimizer", "one of"]),
    (MINIMAL + "[protocol]\namp = 'yes'\n", ["[protocol] amp", "true or false"]),
    (MINIMAL + "[objective]\nkind = 'rl'\n", ["[objective] kind", "finetune"]),
    (
        MINIMAL + "[objective]\nkind = 'synthetic'\n[model]\nsource = 'efficientnet_lite0'\n",
        ["[model]", "not used by the synthetic objective"],
    ),
    (MINIMAL + "[strategy]\nname = 'adapter'\n", ["[strategy] name", "unknown strategy"]),
    (MINIMAL + "[strategy]\nname = 'l2sp'\ngamma = 1.0\n", ["[strategy] gamma", "takes no"]),
    (MINIMAL + "[strategy]\nname = 'l2sp'\nalpha = 'big'\n", ["[strategy] alpha", "a number"]),
    (MINIMAL + "[strategy]\nname = 'full'\nlr = 0.0\n", ["[strategy] lr", "positive"]),
    (MINIMAL + "[strategy]\nname = 'lora'\nrank = 2.5\n", ["[strategy] rank", "an integer"]),
    (
        MINIMAL + "[strategy]\nname = 'l2sp'\nalpha = 0.1\nsearch = ['alpha']\n",
        ["[strategy] search", "both given and searched"],
    ),
    (MINIMAL + "[strategy]\nname = 'full'\nsearch = ['rank']\n", ["[strategy] search", "rank"]),
    (MINIMAL + "[strategy]\nname = 'full'\nsearch = 'lr'\n", ["[strategy] search", "list"]),
    (MINIMAL + "[strategy]\nrank = 4\n", ["[strategy] rank", "BioTune's hyperparameters"]),
    (
        MINIMAL + "[strategy]\nname = 'full'\n[sampler]\nname = 'biotune'\n",
        ["[sampler] name", "needs another sampler"],
    ),
    (
        MINIMAL + "[strategy]\nname = 'full'\nsearch = ['lr']\n[sampler]\nname = 'grid'\n",
        ["[sampler] name", "enumerates choices"],
    ),
    (MINIMAL + "[sampler]\nname = 'grid'\n", ["[sampler] name", "genes are continuous"]),
    (
        MINIMAL + "[objective]\nkind = 'synthetic'\n[strategy]\nname = 'full'\n",
        ["[strategy] name", "genes only"],
    ),
    # Issue 18, items 11 and 12: numbers, devices, sizes and options that used to get through.
    (MINIMAL + "[sampler]\nmomentum = nan\n", ["[sampler] momentum", "finite"]),
    (MINIMAL + "[sampler]\nideal_value = inf\n", ["[sampler] ideal_value", "finite"]),
    (MINIMAL + "[pruner]\nname = 'threshold'\nupper = -inf\n", ["[pruner] upper", "finite"]),
    (MINIMAL + "[model]\nstd = [0.2, 0.2, inf]\n", ["[model] std", "finite"]),
    (MINIMAL + "[protocol]\ntrain_fraction = nan\n", ["[protocol] train_fraction", "finite"]),
    (MINIMAL + "[protocol]\ndevice = 'gpu'\n", ["[protocol] device", "'cuda:<index>'"]),
    (MINIMAL + "[protocol]\ndevice = 'cuda:01'\n", ["[protocol] device"]),
    (MINIMAL + "[protocol]\nseed = -1\n", ["[protocol] seed", "[0, 4294967295]"]),
    (
        MINIMAL.replace("trials = 5", "trials = 9223372036854775808"),
        ["[budget] trials", "64 bits"],
    ),
    (
        MINIMAL.replace("[budget]", "heartbeat_interval = 0\n[budget]"),
        ["[study] heartbeat_interval", "[1, 3600]"],
    ),
    (
        MINIMAL.replace("[budget]", "heartbeat_interval = 60\ngrace_period = 90\n[budget]"),
        ["[study] grace_period", "at least 120 s"],
    ),
    (
        MINIMAL + "[objective]\nkind = 'synthetic'\nn_blocks = 65\n",
        ["[objective] n_blocks", "[2, 64]"],
    ),
    (MINIMAL + "[sampler]\nname = 'gp'\nn_startup_trials = -1\n", ["n_startup_trials", ">= 0"]),
    (MINIMAL + "[sampler]\nname = 'cmaes'\nsigma0 = 0\n", ["[sampler] sigma0", "> 0"]),
    (MINIMAL + "[pruner]\nname = 'percentile'\npercentile = 101.0\n", ["[0.0, 100.0]"]),
    ("[study\nname = 1", ["not valid TOML"]),
    ("study = 3\n", ["[study]", "must be a table"]),
]


@pytest.mark.parametrize(("text", "parts"), BAD, ids=[b[1][0] for b in BAD])
def test_bad_specs_name_the_file_and_the_key(tmp_path: Path, text: str, parts: list[str]) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as error:
        load_spec(path)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    for part in parts:
        assert part in message, message
    assert not list(tmp_path.glob("*.db")), "a bad spec must create nothing"


def test_a_spec_that_is_not_utf8_is_a_spec_error(tmp_path: Path) -> None:
    path = tmp_path / "spec.toml"
    path.write_bytes(MINIMAL.encode("utf-16"))
    with pytest.raises(SpecError, match=r"spec.toml: not UTF-8 text \(.* at byte 0\)"):
        load_spec(path)


def test_values_at_their_bounds_parse(tmp_path: Path) -> None:
    text = MINIMAL.replace("[budget]", "seed = 4294967295\nheartbeat_interval = 5\n[budget]")
    text += "[objective]\nkind = 'synthetic'\nn_blocks = 64\nseed = 0\n"
    text += "[sampler]\nmomentum = 0.0\nideal_value = -1e300\n"
    spec = load_spec(write(tmp_path, text))
    assert (spec.seed, spec.heartbeat_interval, spec.grace_period) == (4294967295, 5, 10)
    assert spec.synthetic == SyntheticSpec(n_blocks=64, seed=0)
    assert spec.model is None and spec.data is None


def test_a_missing_spec_file_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no such spec file"):
        load_spec(tmp_path / "absent.toml")


def test_specs_are_parsed_without_torch() -> None:
    import subprocess

    code = (
        "import sys; from biotune_optuna.studies import load_spec; "
        f"load_spec({str(STUDIES / 'demo.toml')!r}); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_strategy_spec_gets_the_sampler_that_fits_its_search(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, MINIMAL + "[strategy]\nname = 'surgical'\n"))
    assert (spec.strategy, spec.strategy_search, spec.sampler) == ("surgical", ("block",), "grid")
    text = MINIMAL + "[strategy]\nname = 'l2sp'\nbeta = 0.1\nsearch = ['lr', 'alpha']\n"
    spec = load_spec(write(tmp_path, text))
    assert spec.sampler == "tpe" and spec.strategy_options == {"beta": 0.1}
    assert spec.strategy_search == ("lr", "alpha") and spec.budget == 5
    spec = load_spec(write(tmp_path, MINIMAL + "[strategy]\nname = 'full'\n"))
    assert spec.sampler == "random" and spec.strategy_search == ()


def test_strategy_overrides_name_siblings_and_size_their_budget() -> None:
    demo = load_spec(STUDIES / "demo.toml")
    surgical = demo.with_overrides(strategy="surgical")
    assert surgical.name == "biotune-lite0-digits-surgical" and surgical.sampler == "grid"
    from optuna.distributions import CategoricalDistribution
    from optuna.distributions import FloatDistribution

    assert surgical.budget_for({"block": CategoricalDistribution(tuple("abcde"))}) == 5
    full = demo.with_overrides(strategy="full", seed=2)
    assert full.name == "biotune-lite0-digits-full-seed2" and full.budget_for({}) == 1
    lora = demo.with_overrides(strategy="lora", trials=4)
    assert lora.budget_for({}) == 4 and not lora.auto_budget
    tuned = demo.with_overrides(strategy="l2sp", sampler="tpe")
    assert tuned.name == "biotune-lite0-digits-l2sp-tpe" and tuned.sampler == "tpe"
    assert tuned.budget_for({"lr": FloatDistribution(1e-5, 1e-1, log=True)}) == demo.budget
    same = demo.with_overrides(strategy="biotune")
    assert (same.name, same.sampler, same.strategy) == (demo.name, "biotune", "biotune")
    with pytest.raises(SpecError, match="unknown strategy 'adapter'"):
        demo.with_overrides(strategy="adapter")
    with pytest.raises(SpecError, match="genes are continuous"):
        demo.with_overrides(sampler="grid")
    with pytest.raises(SpecError, match="not full's hyperparameters"):
        demo.with_overrides(strategy="full", sampler="biotune")


def test_baseline_rows_become_sibling_specs() -> None:
    from biotune_optuna.studies._baselines import _row_spec
    from biotune_optuna.studies._baselines import BASELINE_ROWS
    from biotune_optuna.studies._baselines import BaselineRow

    demo = load_spec(STUDIES / "demo.toml")
    assert _row_spec(demo, BASELINE_ROWS[0]) is demo
    lora = _row_spec(demo, BaselineRow("LoRA r=4", "lora", {"rank": 4}))
    assert lora.name == "biotune-lite0-digits-lora-r4" and lora.strategy_options == {"rank": 4}
    assert lora.budget_for({}) == 1
    tuned = _row_spec(demo, BaselineRow("x", "full", search=("lr",), trials=20))
    assert tuned.name == "biotune-lite0-digits-full-search-lr"
    assert (tuned.sampler, tuned.strategy_search, tuned.budget) == ("tpe", ("lr",), 20)
    assert not tuned.auto_budget


def test_a_synthetic_objective_takes_epochs_for_pruners(tmp_path: Path) -> None:
    text = MINIMAL + "[objective]\nkind = 'synthetic'\nepochs = 9\n"
    text += "[pruner]\nname = 'successive_halving'\nreduction_factor = 3\n"
    spec = load_spec(write(tmp_path, text))
    assert spec.synthetic == SyntheticSpec(epochs=9) and spec.pruner == "successive_halving"
    with pytest.raises(SpecError, match=r"\[objective\] epochs: must be in \[1, 1000\], got 0"):
        load_spec(write(tmp_path, MINIMAL + "[objective]\nkind = 'synthetic'\nepochs = 0\n"))
    with pytest.raises(SpecError, match=r"\[objective\] epochs: only for kind = 'synthetic'"):
        load_spec(write(tmp_path, MINIMAL + "[objective]\nepochs = 3\n"))


def test_the_rungs_pruner_is_one_switch_for_biotune_plus_only(tmp_path: Path) -> None:
    plus = MINIMAL + "[sampler]\nname = 'biotune-plus'\n"
    spec = load_spec(
        write(tmp_path, plus + "[pruner]\nname = 'rungs'\n[protocol]\nmax_epochs = 9\n")
    )
    assert spec.pruner == "rungs" and spec.pruner_options == {"max_resource": 9}
    assert spec.checkpoints == (tmp_path / f"{spec.name}-checkpoints").resolve()
    synthetic = plus + "[pruner]\nname = 'rungs'\n[objective]\nkind = 'synthetic'\nepochs = 6\n"
    assert load_spec(write(tmp_path, synthetic)).pruner_options == {"max_resource": 6}
    with pytest.raises(SpecError, match=r"\[pruner\] name: 'rungs' pauses plans .* only"):
        load_spec(write(tmp_path, MINIMAL + "[pruner]\nname = 'rungs'\n"))
    wrong = plus + "[pruner]\nname = 'rungs'\nmax_resource = 4\n[protocol]\nmax_epochs = 9\n"
    with pytest.raises(SpecError, match=r"\[pruner\] max_resource: is the objective's epochs"):
        load_spec(write(tmp_path, wrong))
    paused_worst = plus + "rank_pruned_by_rung = false\n[pruner]\nname = 'rungs'\n"
    with pytest.raises(SpecError, match=r"\[sampler\] rank_pruned_by_rung: must stay true"):
        load_spec(write(tmp_path, paused_worst + "[protocol]\nmax_epochs = 9\n"))
