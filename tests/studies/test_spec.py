"""Study specs: the shipped ones parse, and every mistake is one line naming file and key."""

from __future__ import annotations

from pathlib import Path
import sys

import pytest

from biotune_optuna.studies import load_spec
from biotune_optuna.studies import parse_spec
from biotune_optuna.studies import SpecError


STUDIES = Path(__file__).resolve().parents[2] / "studies"

MINIMAL = """
[study]
name = "s"
storage = "sqlite:///s.db"
[budget]
trials = 5
"""


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
    assert spec.model["source"] == "efficientnet_lite0" and spec.model["weights"] == "DEFAULT"
    assert spec.data["source"] == "digits" and "download" not in spec.data
    assert (spec.protocol.image_size, spec.protocol.max_epochs) == (64, 2)
    assert spec.pruner == "none" and spec.artifacts == STUDIES / "artifacts"


def test_the_synthetic_spec_has_the_papers_budget() -> None:
    spec = load_spec(STUDIES / "synthetic.toml")
    assert spec.objective == "synthetic" and spec.budget == 140 and spec.schedule == (10, 3)


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
        ["[model] state_dict", "only for"],
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
