"""Open a bastion HTML report in headless Chromium, check it, and save screenshots.

    python scripts/screenshot_report.py REPORT.html OUT.png [--full]

Prints the console errors (if any), whether the diagram and every chart are
visible, and writes OUT.png (first screen, or the full page with --full).
Uses Debian's Chromium (`apt-get install chromium`) through Playwright, never a
downloaded browser; set BASTION_CHROMIUM to use another binary.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    candidate = os.environ.get("BASTION_CHROMIUM", "/usr/bin/chromium")
    return candidate if Path(candidate).exists() else None


def inspect(html: Path, png: Path, full_page: bool = False) -> dict[str, Any]:
    """Render the report; return console errors, visibility of diagram and charts."""
    from playwright.sync_api import sync_playwright

    exe = chromium_path()
    if exe is None:
        raise RuntimeError("no Chromium found; apt-get install chromium or set BASTION_CHROMIUM")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
            page.goto(html.resolve().as_uri(), wait_until="load")
            diagram = page.locator("svg.dfd")
            charts = page.eval_on_selector_all(
                "img.chart",
                "imgs => imgs.map(i => ({loaded: i.complete && i.naturalWidth > 0,"
                " width: i.getBoundingClientRect().width}))",
            )
            result = {
                "title": page.title(),
                "console_errors": errors,
                "diagram_visible": diagram.count() == 1 and diagram.is_visible(),
                "diagram_box": diagram.bounding_box() if diagram.count() == 1 else None,
                "charts": charts,
                "findings": page.locator("div.finding").count(),
            }
            page.screenshot(path=str(png), full_page=full_page)
        finally:
            browser.close()
    return result


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    result = inspect(Path(argv[1]), Path(argv[2]), full_page="--full" in argv)
    print(json.dumps(result, indent=2))
    return 1 if result["console_errors"] or not result["diagram_visible"] else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
