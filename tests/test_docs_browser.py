"""The documentation site in a real browser: built, served, and looked at by headless chromium.

The site is built into ``tmp_path`` as ``.ci/run`` builds it (``mkdocs build --strict``), served
over HTTP on 127.0.0.1, and the home page, the command-line reference and the options page are
screenshotted by Debian's ``chromium`` (``--virtual-time-budget`` lets the theme's scripts run
first). The screenshots are kept in ``$BIOTUNE_TEST_OUTPUT/docs/`` for a person to look at, and
each must show a page: not one colour, and the page's title drawn in its text.
"""

from __future__ import annotations

from collections.abc import Iterator
import functools
import http.server
import os
from pathlib import Path
import shutil
import subprocess
import threading

from PIL import Image
import pytest

from tests.conftest import TEST_OUTPUT
from tests.test_docs import build_site


pytestmark = [pytest.mark.slow, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[1]
#: Screenshot name → (page of the site, a text its rendered page must hold).
PAGES = {
    "home": ("", "Where to read"),
    "cli": ("reference/cli/", "max-failures"),
    "options": ("reference/options/", "population_size"),
}
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The built site, served on 127.0.0.1: its base URL."""
    directory = tmp_path_factory.mktemp("site")
    build_site(directory)
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def _chromium() -> str:
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if chromium is None:
        pytest.fail(
            "no `chromium` on PATH: install Debian's chromium (apt-get install chromium), "
            "or deselect these tests with -m 'not browser'"
        )
    return chromium


def _browse(url: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_chromium(), *CHROMIUM_ARGS, "--virtual-time-budget=5000", *arguments, url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("name", PAGES)
def test_the_page_renders_in_chromium(site: str, name: str, tmp_path: Path) -> None:
    path, text = PAGES[name]
    dom = _browse(site + path, "--dump-dom")
    assert dom.returncode == 0 and text in dom.stdout, dom.stderr[-2000:]
    assert "md-header" in dom.stdout and "md-sidebar" in dom.stdout  # the theme's layout
    shot = tmp_path / f"{name}.png"
    done = _browse(
        site + path, "--hide-scrollbars", "--window-size=1280,900", f"--screenshot={shot}"
    )
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    kept = TEST_OUTPUT / "docs"
    kept.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, kept / shot.name)
    image = Image.open(shot).convert("L")
    assert image.size == (1280, 900)
    histogram = image.histogram()
    assert max(histogram) < 0.97 * sum(histogram), "the screenshot is (nearly) one colour"
    assert sum(1 for count in histogram if count) > 16, "too few shades: no text drawn"
