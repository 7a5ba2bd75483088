"""Every kind of bad input: one line naming the problem, exit code 2, nothing created.

The cases the reliability issue lists, each through ``biotune-optuna run`` as a user meets it:
malformed specs, unknown parts, storages that are malformed, unreachable, a directory or a
corrupted file, and a study that exists with other sampler settings; then the input that used to
get through (issue 18, items 11 and 12): numbers that are not finite or overflow, devices that
do not exist, model sources and weights that are not what they claim, text that is not UTF-8,
overrides that contradict the spec, and options that Optuna's samplers and pruners would misuse.
"""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from biotune_optuna.cli import main
from biotune_optuna.studies import SpecError
from biotune_optuna.studies._spec import parse_spec


SYNTHETIC = """
[study]
name = "s"
storage = "{storage}"
[sampler]
population_size = 4
n_elites = 1
[budget]
trials = 6
[objective]
kind = "synthetic"
"""

FINETUNE = """
[study]
name = "f"
storage = "sqlite:///f.db"
[budget]
trials = 2
[model]
source = "{model}"
[data]
source = "{data}"
max_train_images = 64
[protocol]
image_size = 16
max_epochs = 1
"""

# (spec text, text the one line must contain)
CASES = {
    "unknown key": (
        SYNTHETIC.replace("n_elites = 1", "n_elites = 1\npopsize = 3"),
        "[sampler] popsize",
    ),
    "wrong type": (SYNTHETIC.replace("trials = 6", 'trials = "six"'), "[budget] trials"),
    "zero population": (
        SYNTHETIC.replace("population_size = 4", "population_size = 0"),
        "[sampler] population_size",
    ),
    "negative population": (
        SYNTHETIC.replace("population_size = 4", "population_size = -4"),
        "[sampler] population_size",
    ),
    "elites >= population": (
        SYNTHETIC.replace("n_elites = 1", "n_elites = 4"),
        "n_elites: must be >= 0 and below population_size (4)",
    ),
    "unknown sampler": (
        SYNTHETIC.replace("population_size = 4\nn_elites = 1", 'name = "annealing"'),
        "unknown sampler 'annealing'",
    ),
    "unknown model": (
        FINETUNE.format(model="torchvision:resnet9000", data="digits"),
        "[model] source: 'torchvision:resnet9000'",
    ),
    "unknown model family": (
        FINETUNE.format(model="resnet50", data="digits"),
        "[model] source",
    ),
    "unknown dataset": (
        FINETUNE.format(model="tests.finetune.conftest:tiny_cnn", data="imagenet"),
        "[data] source",
    ),
    "unknown torchvision dataset": (
        FINETUNE.format(
            model="tests.finetune.conftest:tiny_cnn", data="torchvision:NoSuchSet"
        ).replace("[data]", '[data]\nroot = "."'),
        "[data] source: 'torchvision:NoSuchSet'",
    ),
    "code instead of a name": (
        FINETUNE.format(model="__import__('os').system('touch pwned')", data="digits"),
        "[model] source",
    ),
    "malformed sqlite URL": (SYNTHETIC.format(storage="sqlite:/s.db"), "sqlite:///<path>"),
    "a path, not a URL": (SYNTHETIC.format(storage="s.db"), "not a storage URL"),
    "unknown database": (
        SYNTHETIC.format(storage="postgres://me@127.0.0.1/s"),
        "unknown database 'postgres'",
    ),
    "unreachable server": (
        SYNTHETIC.format(storage="postgresql://me:secret@127.0.0.1:1/s"),
        "cannot open storage postgresql://me:***@127.0.0.1:1/s",
    ),
    "missing directory": (SYNTHETIC.format(storage="sqlite:///no/such/s.db"), "does not exist"),
    "directory at the SQLite path": (SYNTHETIC.format(storage="sqlite:///dir.db"), "not a file"),
    "corrupted SQLite file": (
        SYNTHETIC.format(storage="sqlite:///broken.db"),
        "is not an SQLite database",
    ),
    "corrupted journal file": (
        SYNTHETIC.format(storage="journal:///broken.log"),
        "is not an Optuna journal",
    ),
}

TINY = FINETUNE.format(model="tests.finetune.conftest:tiny_cnn", data="digits")


def _sampler(name: str, **options: str) -> str:
    lines = "".join(f"\n{k} = {v}" for k, v in options.items())
    return SYNTHETIC.replace("population_size = 4\nn_elites = 1", f'name = "{name}"{lines}')


# Issue 18, item 11: numbers that are not finite, or so large that they overflow.
NUMBERS = {
    "nan momentum": (
        SYNTHETIC.replace("n_elites = 1", "n_elites = 1\nmomentum = nan"),
        "[sampler] momentum: must be a finite number, got nan",
    ),
    "inf momentum": (
        SYNTHETIC.replace("n_elites = 1", "n_elites = 1\nmomentum = inf"),
        "[sampler] momentum: must be a finite number, got inf",
    ),
    "nan ideal_value": (
        SYNTHETIC.replace("n_elites = 1", "n_elites = 1\nideal_value = nan"),
        "[sampler] ideal_value",
    ),
    "-inf ideal_value": (
        SYNTHETIC.replace("n_elites = 1", "n_elites = 1\nideal_value = -inf"),
        "[sampler] ideal_value",
    ),
    "a float that overflows to inf": (
        SYNTHETIC.replace("n_elites = 1", "n_elites = 1\nmomentum = 1e400"),
        "[sampler] momentum: must be a finite number",
    ),
    "nan in an unknown option": (
        _sampler("tpe", bogus="nan"),
        "[sampler] bogus",
    ),
    "nan tpe prior_weight": (_sampler("tpe", prior_weight="nan"), "[sampler] prior_weight"),
    "nan nsgaii mutation_prob": (
        _sampler("nsgaii", mutation_prob="nan"),
        "[sampler] mutation_prob",
    ),
    "nan pruner threshold": (
        SYNTHETIC + '[pruner]\nname = "threshold"\nlower = nan\n',
        "[pruner] lower: must be a finite number, got nan",
    ),
    "inf pruner percentile": (
        SYNTHETIC + '[pruner]\nname = "percentile"\npercentile = inf\n',
        "[pruner] percentile",
    ),
    "nan strategy lr": (TINY + '[strategy]\nname = "full"\nlr = nan\n', "[strategy] lr"),
    "nan model mean": (
        TINY.replace("[data]", "mean = [0.5, nan, 0.5]\n[data]"),
        "[model] mean",
    ),
    "zero model std": (
        TINY.replace("[data]", "std = [0.5, 0.0, 0.5]\n[data]"),
        "[model] std",
    ),
    "nan protocol weight_decay": (
        TINY.replace("max_epochs = 1", "max_epochs = 1\nweight_decay = nan"),
        "[protocol] weight_decay",
    ),
    "inf protocol base_lr": (
        TINY.replace("max_epochs = 1", "max_epochs = 1\nbase_lr = inf"),
        "[protocol] base_lr",
    ),
    "huge protocol feature_cache_mb": (
        TINY.replace("max_epochs = 1", "max_epochs = 1\nfeature_cache_mb = 1e300"),
        "[protocol] feature_cache_mb",
    ),
    "nan data val_fraction": (
        TINY.replace("max_train_images = 64", "max_train_images = 64\nval_fraction = nan"),
        "[data] val_fraction",
    ),
    "huge heartbeat_interval": (
        SYNTHETIC.replace(
            'storage = "{storage}"', 'storage = "{storage}"\nheartbeat_interval = ' + str(2**62)
        ),
        "[study] heartbeat_interval: must be in [1, 3600] seconds",
    ),
    "grace_period under the floor": (
        SYNTHETIC.replace(
            'storage = "{storage}"',
            'storage = "{storage}"\nheartbeat_interval = 4\ngrace_period = 6',
        ),
        "[study] grace_period: must be at least 10 s",
    ),
    "an integer beyond 64 bits": (
        SYNTHETIC.replace("trials = 6", "trials = 99999999999999999999999"),
        "[budget] trials: must fit in 64 bits",
    ),
    "a seed Optuna's samplers cannot take": (
        SYNTHETIC.replace('storage = "{storage}"', 'storage = "{storage}"\nseed = 4294967296'),
        "[study] seed: must be in [0, 4294967295]",
    ),
    "a negative landscape seed": (
        SYNTHETIC.replace('kind = "synthetic"', 'kind = "synthetic"\nseed = -1'),
        "[objective] seed",
    ),
}

# Issue 18, item 12: devices, model sources, weights, encodings, overrides, sizes, options.
OTHERS = {
    "unknown device": (
        TINY.replace("max_epochs = 1", 'max_epochs = 1\ndevice = "tpu"'),
        "[protocol] device: must be 'auto', 'cpu'",
    ),
    "a CUDA device this machine lacks": (
        TINY.replace("max_epochs = 1", 'max_epochs = 1\ndevice = "cuda:9"'),
        "[protocol] device: 'cuda:9'",
    ),
    "a model source that is not callable": (
        FINETUNE.format(model="os:sep", data="digits"),
        "[model] source: 'os:sep'",
    ),
    "a model factory that needs arguments": (
        FINETUNE.format(model="torch.nn:Linear", data="digits"),
        "[model] source: 'torch.nn:Linear'",
    ),
    "a state_dict that is not a weights file": (
        TINY.replace("[data]", 'state_dict = "notes.txt"\n[data]'),
        "[model] state_dict",
    ),
    "a state_dict of another model": (
        TINY.replace("[data]", 'state_dict = "other.pt"\n[data]'),
        "[model] state_dict",
    ),
    "too many synthetic blocks": (
        SYNTHETIC.replace('kind = "synthetic"', 'kind = "synthetic"\nn_blocks = 100000'),
        "[objective] n_blocks: must be in [2, 64]",
    ),
    "negative tpe n_startup_trials": (
        _sampler("tpe", n_startup_trials="-1"),
        "[sampler] n_startup_trials: must be >= 0, got -1",
    ),
    "negative gp n_startup_trials": (
        _sampler("gp", n_startup_trials="-3"),
        "[sampler] n_startup_trials",
    ),
    "zero tpe n_ei_candidates": (
        _sampler("tpe", n_ei_candidates="0"),
        "[sampler] n_ei_candidates",
    ),
    "zero cmaes sigma0": (_sampler("cmaes", sigma0="0.0"), "[sampler] sigma0: must be > 0"),
    "negative cmaes sigma0": (_sampler("cmaes", sigma0="-0.5"), "[sampler] sigma0"),
    "cmaes popsize 1": (_sampler("cmaes", popsize="1"), "[sampler] popsize"),
    "unknown qmc_type": (_sampler("qmc", qmc_type='"owen"'), "[sampler] qmc_type"),
    "negative pruner n_warmup_steps": (
        SYNTHETIC + '[pruner]\nname = "median"\nn_warmup_steps = -1\n',
        "[pruner] n_warmup_steps: must be >= 0",
    ),
    "hyperband reduction_factor 1": (
        SYNTHETIC + '[pruner]\nname = "hyperband"\nreduction_factor = 1\n',
        "[pruner] reduction_factor",
    ),
}
CASES.update(NUMBERS)
CASES.update(OTHERS)
CASES["not UTF-8"] = (b'[study]\nname = "caf\xe9"\n', "spec.toml: not UTF-8 text")
CASES["--strategy on the synthetic objective"] = (
    SYNTHETIC,
    "--strategy 'lora': the synthetic objective has BioTune's genes only",
)
CASES["cuda on a machine without CUDA"] = (
    TINY.replace("max_epochs = 1", 'max_epochs = 1\ndevice = "cuda"'),
    "[protocol] device: 'cuda'",
)
#: Command-line arguments after ``run SPEC``.
ARGS = {"--strategy on the synthetic objective": ["--strategy", "lora"]}
#: Cases that only a machine without CUDA can show.
WITHOUT_CUDA = {"cuda on a machine without CUDA"}


def snapshot(directory: Path) -> dict[str, bytes | None]:
    return {
        str(p.relative_to(directory)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(directory.rglob("*"))
    }


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_exit_2_and_nothing_created(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    case: str,
) -> None:
    text, expected = CASES[case]
    spec = tmp_path / "spec.toml"
    if isinstance(text, bytes):
        spec.write_bytes(text)
    else:
        spec.write_text(text.replace("{storage}", "sqlite:///s.db"))
    (tmp_path / "dir.db").mkdir()
    (tmp_path / "broken.db").write_bytes(b"\x00\x01 not a database " * 64)
    (tmp_path / "broken.log").write_text("this is no journal\n")
    (tmp_path / "notes.txt").write_text("these are not weights\n")
    torch = pytest.importorskip("torch")
    if case in WITHOUT_CUDA and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    torch.save({"weight": torch.zeros(2, 2)}, tmp_path / "other.pt")
    monkeypatch.chdir(tmp_path)  # where a `touch pwned` would land
    before = snapshot(tmp_path)
    assert main(["run", str(spec), *ARGS.get(case, [])]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("biotune-optuna: error: ") and expected in lines[0], lines[0]
    assert "secret" not in err
    assert snapshot(tmp_path) == before, "bad input must create or change nothing"


def _table(**sections: dict[str, object]) -> dict[str, dict[str, object]]:
    table: dict[str, dict[str, object]] = {
        "study": {"name": "s", "storage": "sqlite:///s.db"},
        "budget": {"trials": 2},
        "objective": {"kind": "synthetic"},
    }
    for name, content in sections.items():
        table[name] = {**table.get(name, {}), **content}
    return table


NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize(
    ("sections", "expected"),
    [
        ({"sampler": {"momentum": NAN}}, "[sampler] momentum: must be a finite number"),
        ({"sampler": {"momentum": INF}}, "[sampler] momentum: must be a finite number"),
        ({"sampler": {"ideal_value": NAN}}, "[sampler] ideal_value: must be a finite number"),
        ({"sampler": {"name": "tpe", "n_startup_trials": -1}}, "[sampler] n_startup_trials"),
        ({"sampler": {"name": "cmaes", "sigma0": 0.0}}, "[sampler] sigma0: must be > 0"),
        ({"pruner": {"name": "threshold", "upper": NAN}}, "[pruner] upper"),
        ({"pruner": {"name": "median", "n_warmup_steps": -2}}, "[pruner] n_warmup_steps"),
        ({"study": {"heartbeat_interval": 2**62}}, "[study] heartbeat_interval"),
        ({"study": {"heartbeat_interval": 0}}, "[study] heartbeat_interval"),
        ({"study": {"grace_period": 10**30}}, "[study] grace_period: must fit in 64 bits"),
        ({"study": {"seed": 2**32}}, "[study] seed"),
        ({"objective": {"n_blocks": 65}}, "[objective] n_blocks: must be in [2, 64]"),
        ({"objective": {"n_blocks": 1}}, "[objective] n_blocks: must be in [2, 64]"),
        ({"budget": {"trials": 2**64}}, "[budget] trials: must fit in 64 bits"),
        ({"protocol": {"base_lr": NAN}}, "[protocol] base_lr"),
        ({"protocol": {"device": "cuda:x"}}, "[protocol] device"),
        ({"protocol": {"device": "tpu"}}, "[protocol] device"),
    ],
)
def test_parse_spec_refuses_the_same_values_from_python(
    sections: dict[str, dict[str, object]], expected: str
) -> None:
    with pytest.raises(SpecError) as error:
        parse_spec(_table(**sections), path="p.toml")
    message = str(error.value)
    assert "\n" not in message and message.startswith("p.toml: ") and expected in message


def test_heartbeat_defaults_follow_the_interval() -> None:
    from biotune_optuna.studies._heartbeat import MIN_GRACE_PERIOD

    spec = parse_spec(_table(study={"heartbeat_interval": 3}))
    assert (spec.heartbeat_interval, spec.grace_period) == (3, MIN_GRACE_PERIOD)
    spec = parse_spec(_table(study={"heartbeat_interval": 30}))
    assert spec.grace_period == 60


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:0", "cuda:12", "mps", "xpu:1"])
def test_the_device_forms_torch_knows_parse(device: str) -> None:
    assert parse_spec(_table(protocol={"device": device})).protocol.device == device


def test_a_strategy_override_on_the_synthetic_objective_is_refused() -> None:
    spec = parse_spec(_table(), path="p.toml")
    with pytest.raises(SpecError, match=r"^p.toml: \[objective\] kind: --strategy 'lora'"):
        spec.with_overrides(strategy="lora")
    assert spec.with_overrides(strategy="biotune").strategy == "biotune"


def test_an_existing_study_with_other_sampler_settings_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "spec.toml"
    storage = f"sqlite:///{tmp_path / 's.db'}"
    spec.write_text(SYNTHETIC.format(storage=storage))
    assert main(["run", str(spec), "-q"]) == 0
    capsys.readouterr()
    before = snapshot(tmp_path)
    spec.write_text(SYNTHETIC.format(storage=storage).replace("n_elites = 1", "n_elites = 2"))
    assert main(["run", str(spec)]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "exists" in err[0] and "n_elites" in err[0], err
    before.pop("spec.toml")
    after = snapshot(tmp_path)
    after.pop("spec.toml")
    assert after == before
    assert len(optuna.load_study(study_name="s", storage=storage).trials) == 6
