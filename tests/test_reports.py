"""`make figures` end to end at the tiny profile, and the reports checked in a real browser.

The session fixture builds every report with the Makefile into a temporary folder (the
same recipe `make figures` runs); the browser test opens each page in headless Chromium.
"""

import html
import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlparse

import nbformat
import pytest

from pnf.report.scorecard import CLAIMS

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


def make(*targets, env_changes=None, **variables):
    env = {**os.environ, **(env_changes or {})}
    command = ["make", *targets, *[f"{name}={value}" for name, value in variables.items()]]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)


@pytest.fixture(scope="session")
def tiny_reports(tmp_path_factory):
    folder = tmp_path_factory.mktemp("site")
    (folder / "data").mkdir()
    # two notebooks at a time, each computing its runs in its own process; data from an empty folder
    # (the embedded fallbacks), so an online machine does not fetch into the checkout
    done = make("-j2", "figures", PROFILE="tiny", EXECUTOR="inline", REPORTS=folder / "reports",
                env_changes={"PNF_CACHE": str(folder / "cache"), "PNF_DATA": str(folder / "data")})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    return folder / "reports"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_every_notebook_becomes_a_report(tiny_reports, notebook):
    page = tiny_reports / f"{notebook.stem}.html"
    executed = nbformat.read(tiny_reports / notebook.name, as_version=4)
    errors = [o for c in executed.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert page.exists() and not errors
    text = page.read_text()
    assert "highlight hl-ipython3" not in text  # code cells hidden
    assert "cdnjs" not in text and "unpkg" not in text  # nothing loaded from CDNs


def test_the_index_has_a_scorecard_row_per_claim(tiny_reports):
    text = html.unescape((tiny_reports / "index.html").read_text())
    body = text.split("<table id=scorecard>")[1].split("<tbody>")[1].split("</tbody>")[0]
    assert body.count("<tr id=") == len(CLAIMS)
    assert all(claim.statement.split(":")[0] in text for claim in CLAIMS)
    assert "What this build established" in text and text.count("<table id=summary>") == 1


def test_a_failing_notebook_fails_make_with_its_traceback_and_leaves_no_html(tmp_path, tiny_reports):
    notebooks, reports = tmp_path / "notebooks", tmp_path / "reports"
    notebooks.mkdir()
    reports.mkdir()
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    parameters = nbformat.v4.new_code_cell('profile = "quick"')
    parameters.metadata["tags"] = ["parameters"]
    notebook.cells = [parameters, nbformat.v4.new_code_cell("ratio = 1 / 0")]
    nbformat.write(notebook, notebooks / "broken.ipynb")
    (reports / "broken.html").write_text("stale")
    site = tiny_reports.parent  # its runs are cached there: make's `runs` step only loads them
    done = make(str(reports / "broken.html"), PROFILE="tiny", REPORTS=reports, NOTEBOOK_DIR=notebooks,
                env_changes={"PNF_CACHE": str(site / "cache"), "PNF_DATA": str(site / "data")})
    assert done.returncode != 0
    assert "ZeroDivisionError" in done.stdout + done.stderr
    assert not (reports / "broken.html").exists()


TUTORIALS = ("explore", "esgd_in_your_loop")  # how to use pnf, not reports of runs: no Data line
SCREENSHOTS = ("image_fig1a", "image_robustness")


def check_pages_in_browser(reports: Path, screenshot: Path) -> None:
    """Every page in Chromium: no broken image or link, no console error, none wider than a
    1280 px window, a Data line in every report; screenshots of the index and SCREENSHOTS."""
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1400,1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        pages = sorted(reports.glob("*.html"))
        assert reports / "index.html" in pages and len(pages) > 1
        for page in pages:
            driver.get(page.as_uri())
            broken = driver.execute_script(
                "return Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).length")
            assert broken == 0, f"{page.name}: {broken} broken image(s)"
            for href in driver.execute_script("return Array.from(document.links).map(a => a.href)"):
                url = urlparse(href)
                if url.scheme == "file":
                    assert Path(unquote(url.path)).exists(), f"{page.name}: broken link {href}"
            severe = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
            assert not severe, f"{page.name}: console errors {severe}"
            driver.set_window_size(1280, 800)  # a laptop's window: no page scrolls sideways
            overflow = driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{page.name} is {overflow} px wider than a 1280 px window"
            text = driver.execute_script("return document.body.innerText")
            if page.stem not in TUTORIALS and page.name != "index.html":  # every report says what it ran on
                assert "Data:" in text, f"{page.name} has no Data line (report.how_we_ran())"
            if page.name == "index.html" or page.stem in SCREENSHOTS:  # at 1280×800, for a reader of the CI log
                driver.save_screenshot(str(screenshot if page.name == "index.html"
                                           else screenshot.with_name(f"{page.stem}.png")))
            driver.set_window_size(1400, 1000)
            if page.name == "index.html":
                rows = driver.execute_script("return document.querySelectorAll('#scorecard tbody tr').length")
                assert rows == len(CLAIMS)
    finally:
        driver.quit()


@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="chromium/chromedriver absent and could not be installed "
                    "(make test installs Debian's chromium and chromium-driver when it can)")
def test_tiny_reports_render_in_a_browser(tiny_reports):
    screenshot = tiny_reports / "screenshots" / "index.png"
    check_pages_in_browser(tiny_reports, screenshot)
    assert screenshot.stat().st_size > 10_000


@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="chromium/chromedriver absent")
@pytest.mark.skipif(not (ROOT / "reports" / "index.html").exists(), reason="no reports built yet (make figures)")
def test_built_reports_render_in_a_browser():
    check_pages_in_browser(ROOT / "reports", ROOT / "reports" / "screenshots" / "index.png")
