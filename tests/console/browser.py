"""Headless Chromium (Debian's ``chromium``) driven by Playwright, axe-core checks and screenshots
for the console tests."""

from __future__ import annotations

import os
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
# Screenshots of every page, kept as test artifacts (gitignored).
ARTIFACTS = Path(os.environ.get("SIPPHONES_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "tests" / "artifacts")) \
    / "console"
BLOCKING = ("serious", "critical")


def launch(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


def shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def axe_violations(page) -> list[dict]:
    """axe-core's serious and critical violations on the page as it is."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [v for v in results.response["violations"] if v.get("impact") in BLOCKING]


def assert_accessible(page, name: str) -> None:
    shot(page, name)
    bad = axe_violations(page)
    assert not bad, f"{name}: axe-core found " + "; ".join(
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:5]}" for v in bad)
