"""optuna-dashboard in a real headless browser, on a small run of the demo study.

Needs Debian's ``chromium`` (``apt-get install chromium``; the README's test command installs
it). Playwright drives it through ``executable_path``; ``playwright install`` is never run.
Every page of the installed optuna-dashboard's router is visited and checked for the texts a
user should see there (the ``plan`` column, rounded learning rates, the note's recommended plan)
and for console errors. Screenshots are kept in ``$BIOTUNE_TEST_OUTPUT/dashboard/`` (CI:
``test-output/dashboard/``).
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import os
import shutil
import threading
from typing import Any
from wsgiref.simple_server import make_server
from wsgiref.simple_server import WSGIRequestHandler

import optuna
import pytest

from biotune_optuna.cli import main
from tests.conftest import small_demo_spec
from tests.conftest import TEST_OUTPUT


pytestmark = [pytest.mark.browser, pytest.mark.slow]

OUTPUT = TEST_OUTPUT
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def demo_dashboard(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """The demo spec, small (8 trials at 32 px), served by optuna-dashboard on 127.0.0.1.

    Yields the dashboard's URL and what its pages should show (:func:`_facts`).
    """
    from optuna.artifacts import FileSystemArtifactStore
    from optuna_dashboard import wsgi

    directory = tmp_path_factory.mktemp("demo")
    spec = small_demo_spec(directory)
    assert main(["run", str(spec), "--trials", "8", "-q"]) == 0
    storage = optuna.storages.get_storage(f"sqlite:///{directory / 'demo.db'}")
    store = FileSystemArtifactStore(str(directory / "artifacts"))
    server = make_server("127.0.0.1", 0, wsgi(storage, store), handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    study_id = storage.get_study_id_from_name("biotune-lite0-digits")
    yield f"http://127.0.0.1:{server.server_port}/dashboard", _facts(storage, study_id)
    server.shutdown()


def _facts(storage: optuna.storages.BaseStorage, study_id: int) -> dict[str, Any]:
    """The values the pages are checked for: the study's id, its first and last trials' plans
    and the last one's learning rates as the trial table shows them (one line, rounded)."""
    trials = storage.get_all_trials(study_id)
    first, last = trials[0], trials[-1]
    recommended = storage.get_study_user_attrs(study_id)["recommended_trial"]
    rates = last.user_attrs["learning_rates"]  # one line, 3 significant digits
    assert all(len(item.split("\u00a0")[1]) <= 8 for item in rates.split(",\u00a0")), rates
    return {
        "id": study_id,
        "last": last.number,
        "recommended": recommended,
        "plan_first": first.user_attrs["plan"],
        "plan_last": last.user_attrs["plan"],
        "rates_last": rates,
    }


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if chromium is None:
        pytest.fail(
            "no `chromium` on PATH: install Debian's chromium (apt-get install chromium), "
            "or deselect these tests with -m 'not browser'"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


# Every page of optuna-dashboard 0.21.0's router (its bundle's routes), but
# /studies/:id/preference-history, for preferential studies only (not in a BioTune study's
# sidebar). Each: (screenshot and test id, path, what must be on it, what must not).
PAGES = [
    ("home", "", ["biotune-lite0-digits"], []),
    (
        "study",
        "/studies/{id}",
        [
            *["History", "Freeze mask per trial"],
            "Validation macro accuracy vs trainable parameters",  # the metric's name
        ],
        ["Objective 0"],  # the History's axis: the study's metric name instead
    ),
    (
        "trials",  # the first trial is selected: its note and user attrs
        "/studies/{id}/trials",
        [
            *["8 Trials", "Trial 0", "Trial {last}", "Plan of trial 0", "{plan_first}"],
            *["generation", "role", "parents", "fold", "frozen_blocks", "learning_rates"],
            *["trainable_fraction", "epochs"],
        ],
        [],
    ),
    (  # where the trial table's Detail links go
        "trial-last",
        "/studies/{id}/trials?numbers={last}",
        ["Trial {last} (trial_id=", "Plan of trial {last}", "{plan_last}"],
        [],
    ),
    (  # the recommended trial is marked where its trial is shown
        "trial-recommended",
        "/studies/{id}/trials?numbers={recommended}",
        ["Trial {recommended} (trial_id=", "★ Recommended trial of the study", "estimate"],
        [],
    ),
    (  # the parallel coordinates, the history and the trial table
        "smart-selection",
        "/studies/{id}/smartSelection",
        [
            *["Parallel Coordinate", "Param importance:stem", "UserAttribute plan"],
            *["{plan_last}", "UserAttribute learning_rates", "{rates_last}"],
            "UserAttribute trainable_fraction",
        ],
        [],
    ),
    (
        "analytics",
        "/studies/{id}/analytics",
        ["Hyperparameter Relationships", "Slice", "Contour", "Empirical Distribution"],
        [],
    ),
    # optuna-dashboard 0.21.0 routes it, links it nowhere and renders nothing but the app bar
    # there (its study page has no "trialTable" case): the trial table is on Smart Selection.
    # If this fails, a newer optuna-dashboard renders it: check the plan column there and
    # update the dashboard guide (docs/guide/dashboard.md).
    ("trial-table", "/studies/{id}/trialTable", ["biotune-lite0-digits (id="], ["Number"]),
    (
        "note",
        "/studies/{id}/note",
        [
            *["Recommended plan: trial {recommended}", "observed value", "estimate"],
            *["best observed value", "Best Trial", "sampler", "biotune", "[protocol]"],
        ],
        [],
    ),
    ("compare-studies", "/compare-studies", ["Compare Studies", "biotune-lite0-digits"], []),
]

#: True once every text is in the page's markup or rendered text.
_SHOWS_ALL = """texts => {
    const content = document.documentElement.outerHTML + document.body.innerText;
    return texts.every(text => content.includes(text));
}"""


@pytest.mark.parametrize(
    ("name", "page_path", "expected", "absent"), PAGES, ids=[p[0] for p in PAGES]
)
def test_dashboard_pages_render_the_biotune_study_without_console_errors(
    demo_dashboard: tuple[str, dict[str, Any]],
    browser: object,
    name: str,
    page_path: str,
    expected: list[str],
    absent: list[str],
) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    base, facts = demo_dashboard
    expected = [text.format(**facts) for text in expected]
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(base + page_path.format(**facts), wait_until="networkidle")
        # The data grids and Plotly draw after the page has loaded; on a timeout the
        # assertion below names what is missing.
        with contextlib.suppress(PlaywrightTimeout):
            page.wait_for_function(_SHOWS_ALL, arg=expected, timeout=15_000)
        page.wait_for_timeout(500)  # let Plotly finish drawing before the screenshot
        content = page.content() + page.inner_text("body")  # markup and rendered text
        OUTPUT.joinpath("dashboard").mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(OUTPUT / "dashboard" / f"{name}.png"), full_page=True)
    finally:
        page.close()
    missing = [text for text in expected if text not in content]
    assert not missing, f"{page_path}: not on the page: {missing}"
    shown = [text for text in absent if text in content]
    assert not shown, f"{page_path}: unexpectedly on the page: {shown}"
    assert not errors, f"{page_path}: console errors: {errors}"
