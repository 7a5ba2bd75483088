"""Execute the notebooks headless in quick mode and check what they show.

Each notebook runs in a fresh ``python3`` kernel with ``BIOTUNE_NOTEBOOK_QUICK=1`` (a cut-down
budget: 32 px, 1 epoch, a few hundred images) and ``notebooks/`` as its working directory; its
studies and figures go to a temporary directory (``BIOTUNE_NOTEBOOK_OUTPUT``), never into the
source tree. A failing cell fails the test (``nbclient`` raises ``CellExecutionError``). The
executed notebooks are written to ``$BIOTUNE_TEST_OUTPUT/notebooks/`` (CI keeps them), with
``timings.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
import re
import time

import nbclient
import nbformat
import optuna
import pytest

from tests.conftest import TEST_OUTPUT


pytestmark = [pytest.mark.slow, pytest.mark.notebooks]

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
EXECUTED = TEST_OUTPUT / "notebooks"
PLOTLY = "application/vnd.plotly.v1+json"
BLOCKS = ("stem", *(f"stage{i}" for i in range(1, 8)), "head")  # EfficientNet-Lite0's


def _execute(name: str, monkeypatch: pytest.MonkeyPatch, output: Path) -> nbformat.NotebookNode:
    """Run ``notebooks/<name>.ipynb`` in quick mode, writing to ``output``; keep the executed
    copy even on failure."""
    monkeypatch.setenv("BIOTUNE_NOTEBOOK_QUICK", "1")  # the kernel inherits the environment
    monkeypatch.setenv("BIOTUNE_NOTEBOOK_OUTPUT", str(output))
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    client = nbclient.NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    start = time.perf_counter()
    try:
        client.execute()
    finally:
        seconds = time.perf_counter() - start
        EXECUTED.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, EXECUTED / f"{name}.ipynb")
        timings_file = EXECUTED / "timings.json"
        timings = json.loads(timings_file.read_text()) if timings_file.exists() else {}
        timings[name] = round(seconds, 1)
        timings_file.write_text(json.dumps(timings, indent=2) + "\n")
        print(f"{name}: executed in {seconds:.1f} s")
    return nb


def _cell(nb: nbformat.NotebookNode, tag: str) -> nbformat.NotebookNode:
    cells = [c for c in nb.cells if tag in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"expected one cell tagged {tag!r}, found {len(cells)}"
    return cells[0]


def _stdout(cell: nbformat.NotebookNode) -> str:
    return "".join(
        o.text for o in cell.outputs if o.output_type == "stream" and o.name == "stdout"
    )


def _data(cell: nbformat.NotebookNode, mime: str) -> list[str]:
    """Every displayed representation of type ``mime`` in the cell's outputs."""
    return [
        o.data[mime]
        for o in cell.outputs
        if o.output_type in ("display_data", "execute_result") and mime in o.data
    ]


def _table(markdown: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the first markdown table in ``markdown``."""
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    assert len(cells) >= 3, f"no markdown table in {markdown!r}"
    return cells[0], cells[2:]  # cells[1] is the |---| rule


def test_compare_samplers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    nb = _execute("compare_samplers", monkeypatch, tmp_path)
    samplers = ("biotune", "biotune-plus", "random", "tpe")

    # The comparison table: one row per sampler, both seeds reached both budgets.
    tables = _data(_cell(nb, "comparison-table"), "text/markdown")
    assert len(tables) == 1
    header, rows = _table(tables[0])
    assert header[0] == "sampler"
    assert [h.split(" (")[0] for h in header[3:]] == ["best after 4 trials", "best after 8 trials"]
    assert sorted(row[0] for row in rows) == sorted(samplers)
    for row in rows:
        assert row[1:3] == ["2", "8–8"], row
        for cell in row[3:]:
            assert cell.endswith(", n=2"), row
            median = float(cell.split()[0])
            assert 0.0 <= median <= 1.0, row

    # The winner at each budget is computed and printed.
    winners = _stdout(_cell(nb, "winners"))
    for budget in (4, 8):
        assert re.search(
            rf"after\s+{budget} trials: highest median (biotune-plus|biotune|random|tpe)", winners
        )

    # Whether two samplers drew the same leading plans is checked and said, either way.
    assert _stdout(_cell(nb, "shared-start")).strip()

    # Figures: the best-so-far PNG inline, both files on disk, the plotly strip plot.
    assert _data(_cell(nb, "best-so-far-figure"), "image/png")
    output = tmp_path / "output" / "compare_samplers_quick"
    for name in ("best_so_far.html", "best_so_far.png", "compare.md"):
        assert (output / name).stat().st_size > 0, name
    assert _data(_cell(nb, "trial-values-figure"), PLOTLY)

    # The studies are in SQLite: 4 samplers x 2 seeds, 8 complete trials each.
    storage = f"sqlite:///{tmp_path / 'compare_samplers_quick.db'}"
    summaries = optuna.get_all_study_summaries(storage, include_best_trial=False)
    assert len(summaries) == 8
    assert sorted(s.user_attrs["sampler"] for s in summaries) == sorted(samplers * 2)
    for summary in summaries:
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        states = [t.state for t in study.trials]
        assert states == [optuna.trial.TrialState.COMPLETE] * 8, summary.study_name


def test_analyse_study(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    nb = _execute("analyse_study", monkeypatch, tmp_path)

    # The quick study: one generation after the initial population (6 + 8 trials).
    status = _stdout(_cell(nb, "status"))
    assert re.search(r"^sampler\s+biotune$", status, re.MULTILINE), status
    assert re.search(r"^trials\s+14$", status, re.MULTILINE), status
    assert re.search(r"^generation\s+1$", status, re.MULTILINE), status

    generations = "".join(_data(_cell(nb, "generations"), "text/html"))
    assert "init 6" in generations, generations
    assert "exploit" in generations, generations

    for tag in ("history-figure", "selection-figure", "lr-figure", "cost-figure"):
        assert _data(_cell(nb, tag), PLOTLY), f"{tag}: no plotly figure shown"

    # The best plan: one row per block, at least one block fine-tuned.
    shown = _data(_cell(nb, "best-plan"), "text/markdown")
    assert len(shown) == 1
    assert shown[0].startswith("**Best trial #")
    header, rows = _table(shown[0])
    assert header[:3] == ["block", "importance ν", "plan"]
    assert tuple(row[0] for row in rows) == BLOCKS
    assert {row[2] for row in rows} <= {"fine-tune", "frozen"}
    assert any(row[2] == "fine-tune" for row in rows)

    storage = f"sqlite:///{tmp_path / 'analyse_study_quick.db'}"
    (summary,) = optuna.get_all_study_summaries(storage, include_best_trial=False)
    assert summary.n_trials == 14


def test_race_on_a_table(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    nb = _execute("race_on_a_table", monkeypatch, tmp_path)
    entries = ("biotune-plus", "biotune", "random")

    # The shipped table: its grid and cost are read from the file, its plans shown.
    summary = _stdout(_cell(nb, "table-summary"))
    assert "1023 plans" in summary and "2046 (2 folds, 8 epochs each)" in summary, summary
    assert re.search(r"recorded:\s+\d+\.\d CPU hours", summary), summary
    assert "top 1 by validation" in "".join(_data(_cell(nb, "table-summary"), "text/html"))

    # The quick race: 3 entries x 6 seeds x 30 trials.
    assert "18 studies of 30 trials" in _stdout(_cell(nb, "race"))

    # Mean ranks at both budgets, every entry once per budget, ranks within [1, 3].
    (shown,) = _data(_cell(nb, "mean-ranks"), "text/markdown")
    header, rows = _table(shown)
    assert header[:3] == ["trials", "entry", "mean rank [95 % CI]"]
    for budget in ("10", "30"):
        at = [row for row in rows if row[0] == budget]
        assert sorted(row[1] for row in at) == sorted(entries), rows
        assert len({row[4] for row in at}) == 1  # one Friedman test per budget
        for row in at:
            assert 1.0 <= float(row[2].split()[0]) <= 3.0, row
    ranks = sum(float(row[2].split()[0]) for row in rows if row[0] == "30")
    assert ranks == pytest.approx(6.0)  # 1 + 2 + 3, ties or not

    # A computed verdict for each pair and budget.
    verdicts = _stdout(_cell(nb, "wilcoxon"))
    assert (
        len(
            re.findall(
                r"Holm p = [\d.e-]+: (not significantly different|biotune-plus "
                r"significantly (better|worse))",
                verdicts,
            )
        )
        == 4
    ), verdicts

    # The figures: the CD figure as SVG, the anytime curves as PNG, both on disk.
    assert _data(_cell(nb, "cd-figure"), "image/svg+xml")
    assert _data(_cell(nb, "anytime-figure"), "image/png")
    output = tmp_path / "output" / "race_on_a_table_quick"
    for name in ("critical_difference.svg", "anytime.png", "mean_ranks.md"):
        assert (output / name).stat().st_size > 0, name
