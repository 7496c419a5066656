"""Open a local page in Debian's headless chromium (driven by Playwright, which never downloads a
browser of its own here) and fail the test on any console error or warning, uncaught page error,
or request that leaves the machine: a dashboard must open offline."""
import os
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = os.environ.get("PREFMILL_CHROMIUM", "/usr/bin/chromium")
# without the background-networking flags chromium keeps dialling Google on this closed network
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


@contextmanager
def open_page(path: Path, width: int = 1360, height: int = 900):
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise AssertionError(f"no chromium at {CHROMIUM}: `make test` installs Debian's chromium "
                             "(apt-get install chromium), or set PREFMILL_CHROMIUM")
    problems, remote = [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
                    if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))

            def block(route):
                remote.append(route.request.url)
                route.abort()

            page.route(lambda url: not url.startswith(("file:", "data:", "about:")), block)
            page.goto(path.resolve().as_uri(), wait_until="load")
            yield page
        finally:
            browser.close()
    assert not problems, problems
    assert not remote, f"the page asked for the network: {remote[:5]}"
