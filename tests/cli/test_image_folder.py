"""``studies/image_folder.toml``: your own images and weights from disk, run offline.

The example is parsed as shipped (so that it cannot rot), then run through the CLI on a
generated ImageFolder tree with a randomly initialised checkpoint of its ResNet-50.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pytest

from biotune_optuna.cli import main
from biotune_optuna.studies import load_spec
from biotune_optuna.studies import SpecError
from biotune_optuna.studies._spec import ModelSpec
from tests.cli._specs import lines
from tests.conftest import STUDIES


EXAMPLE = STUDIES / "image_folder.toml"
#: What a run on a CPU in seconds changes, as (line of the example, replacement).
SMALL = [
    ("generations = 10", "trials = 3"),
    ("image_size = 224", "image_size = 32"),
    ("max_epochs = 30", "max_epochs = 1"),
    ("n_seeds = 3", "n_seeds = 1"),
    ("batch_size = 96", "batch_size = 16"),
    ("num_workers = 8", "num_workers = 0"),
]


def image_tree(root: Path, n_per_class: int = 12, size: int = 40) -> Path:
    """``root/<class>/<i>.png``: a red square, a green disc or a blue bar, placed at random."""
    from PIL import Image

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    for label, name in enumerate(("disc", "square", "bar")):
        (root / name).mkdir(parents=True)
        for i in range(n_per_class):
            cy, cx = rng.integers(size // 4, 3 * size // 4, 2)
            r = int(rng.integers(size // 8, size // 4))
            masks = (
                (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r,
                (abs(yy - cy) <= r) & (abs(xx - cx) <= r),
                (abs(yy - cy) <= r // 3) & (abs(xx - cx) <= 2 * r),
            )
            image = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
            image[masks[label], label] = 255
            Image.fromarray(image).save(root / name / f"{i}.png")
    return root


def example(directory: Path, *, root: Path, state_dict: Path, small: bool = False) -> Path:
    """The example spec in ``directory``, its root and state_dict pointed at the given paths
    (and, if ``small``, cut to seconds on a CPU); fails if the example's lines changed."""
    text = EXAMPLE.read_text()
    changes = [('root = "my_images"', f'root = "{root}"')]
    changes += [('state_dict = "resnet50.pth"', f'state_dict = "{state_dict}"')]
    for old, new in changes + (SMALL if small else []):
        assert text.count(old) == 1, f"{EXAMPLE.name} has no single line {old!r}"
        text = text.replace(old, new)
    path = directory / EXAMPLE.name
    path.write_text(text)
    return path


def test_the_example_asks_for_your_weights_and_images() -> None:
    with pytest.raises(SpecError, match=r"\[model\] state_dict: no such file: .*resnet50\.pth"):
        load_spec(EXAMPLE)


def test_the_example_parses_with_your_paths(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "r50.pth").write_bytes(b"")  # the spec checks that the file is there
    spec = load_spec(example(tmp_path, root=tmp_path / "images", state_dict=tmp_path / "r50.pth"))
    assert spec.model == ModelSpec(
        source="torchvision:resnet50", weights=None, state_dict=tmp_path / "r50.pth"
    )
    assert spec.data is not None and spec.data.source == "folder"
    assert spec.data.root == tmp_path / "images" and not spec.data.download
    assert spec.sampler == "biotune" and spec.schedule == (10, 3) and spec.budget == 140
    p = spec.protocol
    assert (p.image_size, p.max_epochs, p.patience, p.n_seeds, p.batch_size) == (224, 30, 3, 3, 96)
    assert p.device == "auto" and p.num_workers == 8
    assert spec.checkpoints == tmp_path / "checkpoints"
    assert spec.storage == f"sqlite:///{tmp_path / 'image_folder.db'}"


@pytest.mark.parametrize(
    "model",
    ["resnet18", pytest.param("resnet50", marks=pytest.mark.slow)],  # resnet50: 12-35 s, 2 CPUs
)
def test_the_example_runs_offline_on_an_image_folder(
    model: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import torch
    from torchvision import models

    def refuse(url: str, *args: object, **kwargs: object) -> None:
        raise AssertionError(f"tried to download {url}")

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    root = image_tree(tmp_path / "images")
    torch.manual_seed(0)
    torch.save(getattr(models, model)(weights=None).state_dict(), tmp_path / "weights.pth")
    spec = example(tmp_path, root=root, state_dict=tmp_path / "weights.pth", small=True)
    source = 'source = "torchvision:resnet50"'
    spec.write_text(spec.read_text().replace(source, f'source = "torchvision:{model}"'))
    assert main(["run", str(spec), "-q"]) == 0
    assert "recommended trial #" in capsys.readouterr().out
    study = optuna.load_study(
        study_name="biotune-resnet50-my-images",
        storage=f"sqlite:///{tmp_path / 'image_folder.db'}",
    )
    finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(finished) == 3
    assert all(0 <= t.value <= 1 and "macro_accuracy" in t.user_attrs for t in finished)


def test_weights_that_are_not_there_or_do_not_fit_exit_2_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch
    from torchvision.models import resnet18

    root = image_tree(tmp_path / "images", n_per_class=6)
    spec = example(tmp_path, root=root, state_dict=tmp_path / "missing.pth", small=True)
    assert main(["run", str(spec)]) == 2
    err = lines(capsys.readouterr().err)
    assert len(err) == 1 and "[model] state_dict: no such file:" in err[0], err

    torch.save(resnet18(weights=None).state_dict(), tmp_path / "r18.pth")  # not a ResNet-50
    spec = example(tmp_path, root=root, state_dict=tmp_path / "r18.pth", small=True)
    assert main(["run", str(spec)]) == 2
    err = lines(capsys.readouterr().err)
    assert len(err) == 1 and "[model] state_dict:" in err[0] and "does not fit ResNet" in err[0]


def test_weights_missing_from_the_hub_cache_say_where_to_put_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from urllib.error import URLError

    import torch

    def refuse(url: str, *args: object, **kwargs: object) -> None:
        raise URLError("no network")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    root = image_tree(tmp_path / "images", n_per_class=6)
    spec = example(tmp_path, root=root, state_dict=tmp_path / "unused.pth", small=True)
    text = spec.read_text().replace(f'state_dict = "{tmp_path / "unused.pth"}"', "")
    spec.write_text(text.replace("\n[model]\n", '\n[model]\nweights = "IMAGENET1K_V2"\n', 1))
    assert main(["run", str(spec)]) == 2
    err = lines(capsys.readouterr().err)
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    assert len(err) == 1 and "[model] weights: cannot download ResNet50_Weights" in err[0], err
    assert f"copy resnet50-11ad3fa6.pth into {cache}/" in err[0]
