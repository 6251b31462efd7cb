"""Real-browser fixtures: Debian's Chromium driven by playwright (never ``playwright install``).

``open_app(locale)`` returns a playwright page on the running app in that locale
(``"en-US"`` or ``"ja-JP"``), collecting console errors in ``page.console_errors``;
``query="?tab=…"`` opens a deep link.
Screenshots go to ``test-artifacts/screenshots/`` (``LLMVIZ_ARTIFACTS`` overrides).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("LLMVIZ_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(os.environ.get("LLMVIZ_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts"))

# Console messages that are not the app's fault (the sandbox has no network for fonts/CDNs).
IGNORED_CONSOLE = ("net::ERR_", "Failed to load resource", "favicon")


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail("Chromium is missing: run the README test command (it installs it with apt).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def open_app(browser, app_url):
    pages = []

    def _open(locale: str = "en-US", width: int = 1400, height: int = 1000, query: str = "",
              **context):  # fmt: skip
        ctx = browser.new_context(locale=locale, viewport={"width": width, "height": height},
                                  **context)  # fmt: skip
        page = ctx.new_page()
        page.console_errors = []

        def on_console(msg):
            if msg.type == "error" and not any(s in msg.text for s in IGNORED_CONSOLE):
                page.console_errors.append(msg.text)

        page.on("console", on_console)
        page.on("pageerror", lambda exc: page.console_errors.append(str(exc)))
        page.goto(app_url + query, wait_until="domcontentloaded", timeout=180_000)
        page.wait_for_selector("#llmviz-title", timeout=180_000)  # slow when the machine is busy
        pages.append(ctx)
        return page

    yield _open
    for ctx in pages:
        ctx.close()


@pytest.fixture(scope="session")
def shot_dir() -> Path:
    d = ARTIFACTS / "screenshots"
    d.mkdir(parents=True, exist_ok=True)
    return d


def open_tab(page, tab: str) -> None:
    """Click the button of the tab built with ``elem_id="tab-<tab>"`` (works in any locale)."""
    page.locator(f"#tab-{tab}-button").click()
    page.wait_for_selector(f"#tab-{tab}", state="visible", timeout=10_000)
