"""optuna-dashboard in a real headless browser, on a small run of the demo study.

Needs Debian's ``chromium`` (``apt-get install chromium``; the README's test command installs
it). Playwright drives it through ``executable_path``; ``playwright install`` is never run.
Screenshots are kept in ``$BIOTUNE_TEST_OUTPUT/dashboard/`` (CI: ``test-output/dashboard/``).
"""

from __future__ import annotations

from collections.abc import Iterator
import os
import shutil
import threading
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
def demo_dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """The demo spec, small (8 trials at 32 px), served by optuna-dashboard on 127.0.0.1."""
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
    yield f"http://127.0.0.1:{server.server_port}/dashboard", study_id
    server.shutdown()


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


PAGES = [
    # (page, what must be on it)
    ("", ["biotune-lite0-digits"]),
    (
        "/studies/{id}",
        ["History", "Freeze mask per trial", "Validation accuracy vs trainable parameters"],
    ),
    (
        "/studies/{id}/trials",
        [
            "Plan of trial",
            "generation",
            "role",
            "parents",
            "fold",
            "frozen_blocks",
            "learning_rates",
            "trainable_fraction",
            "epochs",
        ],
    ),
    # the parallel coordinates and the trial table, with a sortable column per user attr
    ("/studies/{id}/smartSelection", ["generation", "trainable_fraction", "frozen_blocks"]),
    ("/studies/{id}/analytics", []),
    ("/studies/{id}/note", ["Recommended plan", "sampler", "biotune", "[protocol]"]),
]


@pytest.mark.parametrize(("page_path", "expected"), PAGES, ids=[p or "/" for p, _ in PAGES])
def test_dashboard_pages_render_the_biotune_study_without_console_errors(
    demo_dashboard: tuple[str, int], browser: object, page_path: str, expected: list[str]
) -> None:
    base, study_id = demo_dashboard
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(base + page_path.format(id=study_id), wait_until="networkidle")
        if page_path == "/studies/{id}":
            page.wait_for_selector(".js-plotly-plot", timeout=20_000)
        page.wait_for_timeout(2_500)  # let Plotly and the data grids finish drawing
        content = page.content() + page.inner_text("body")  # markup and rendered text
        name = (page_path.replace("/studies/{id}", "study").strip("/") or "home").replace("/", "-")
        OUTPUT.joinpath("dashboard").mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(OUTPUT / "dashboard" / f"{name}.png"), full_page=True)
    finally:
        page.close()
    missing = [text for text in expected if text not in content]
    assert not missing, f"{page_path}: not on the page: {missing}"
    assert not errors, f"{page_path}: console errors: {errors}"
