"""Nothing runs that we did not write: a checkpoint planted in the cache loads without running
its code, every optimizer's state loads with `weights_only=True`, and names that hold HTML,
Markdown or MathJax reach the reports as text (checked in headless Chromium)."""

import hashlib
import io
import shutil
from dataclasses import replace
from html.parser import HTMLParser

import nbformat
import pytest
import torch
from nbconvert.filters.markdown_mistune import markdown2html_mistune
from PIL import Image
from torch import nn

from pnf.optim import OPTIMIZERS, make_optimizer
from pnf.render import main as render
from pnf.report import scorecard
from pnf.report.index import write_index
from pnf.report.text import literal
from pnf.runs import cache as runs
from pnf.tasks import grid
from pnf.train import optimizer_step

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
NASTY = ["x`<img src=x onerror=alert(2)>`.obj", "<script>window.ran = 1</script>", "$x$ and $$y$$", "a \"b\" 'c'",
         "*bold* _under_ __strong__ ~~gone~~", "a|b|c", "line one\nline two\r\n\n- item", "&amp; &lt; \\` \\*",
         "[link](javascript:alert(1)) ![i](x.png)", "# heading", "`", "", "ünïcödé ² é"]


class Payload:
    """Pickled, it calls exec on `code` when loaded with weights_only=False."""

    def __init__(self, code: str):
        self.code = code

    def __reduce__(self):
        return exec, (self.code,)


def test_a_checkpoint_planted_in_the_cache_does_not_run_and_the_run_trains_from_the_start(tmp_path, monkeypatch):
    monkeypatch.setenv("PNF_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PNF_DEVICE", "cpu")
    config = replace([c for c in grid("tiny", ["image"]) if c.activation == "sine" and c.optimizer == "esgd"][0],
                     epochs=2)
    marker = tmp_path / "marker"
    buffer = io.BytesIO()
    torch.save({"model": Payload(f"open({str(marker)!r}, 'w').write('ran')")}, buffer)
    torch.load(io.BytesIO(buffer.getvalue()), weights_only=False)  # the payload is live: it runs when unpickled
    assert marker.exists()
    marker.unlink()
    partial = tmp_path / "cache" / ".partial" / config.key()
    partial.mkdir(parents=True)
    (partial / "epoch-00001.pt").write_bytes(buffer.getvalue())
    (partial / "epoch-00001.sha256").write_text(hashlib.sha256(buffer.getvalue()).hexdigest())

    with pytest.warns(UserWarning, match=r"epoch-00001\.pt cannot be loaded safely \(it holds Python objects other "
                                         r"than tensors and plain values: builtins\.exec\); training from the start"):
        result = runs.run(config, progress=False)
    assert not marker.exists()
    assert result.history["train_loss"] == runs.compute(config, progress=False).history["train_loss"]
    assert not partial.exists()  # the planted file went with the run's checkpoints


def small_model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 1))


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_every_optimizer_state_loads_with_weights_only_and_resumes_bitwise(name):
    x, y = torch.rand(64, 2) * 2 - 1, torch.rand(64, 1)
    options = {"max_iter": 2} if name == "lbfgs" else {}
    model = small_model()
    optimizer = make_optimizer(name, model.parameters(), seed=1, model=model, **options)
    for _ in range(4):
        optimizer_step(model, optimizer, lambda p, t: ((p - t) ** 2).mean(), x, y)
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, buffer)
    saved = torch.load(io.BytesIO(buffer.getvalue()), weights_only=True)
    twin = small_model(seed=7)
    twin.load_state_dict(saved["model"])
    twin_optimizer = make_optimizer(name, twin.parameters(), seed=99, model=twin, **options)
    twin_optimizer.load_state_dict(saved["optimizer"])
    for _ in range(4):
        optimizer_step(model, optimizer, lambda p, t: ((p - t) ** 2).mean(), x, y)
        optimizer_step(twin, twin_optimizer, lambda p, t: ((p - t) ** 2).mean(), x, y)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), twin.parameters()))


class Elements(HTMLParser):
    """The tags of an HTML fragment and the text inside its <code> elements."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.code, self.depth = [], [], 0

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "code":
            self.depth += 1
            self.code.append("")

    def handle_endtag(self, tag):
        self.depth -= tag == "code"

    def handle_data(self, data):
        if self.depth:
            self.code[-1] += data


@pytest.mark.parametrize("name", NASTY)
def test_a_literal_name_comes_out_of_markdown_as_the_same_text_in_one_code_element(name):
    """Through nbconvert's Markdown (what turns a report's Markdown into its HTML), in a list
    item and a table cell: no tag but the Markdown's own, the name's text intact in one <code>."""
    for markdown, tags in ((f"- **Data:** {literal(name)} — end", ["ul", "li", "strong", "code"]),
                           (f"| data | x |\n|---|---|\n| {literal(name)} | 1 |", None)):
        parsed = Elements()
        parsed.feed(markdown2html_mistune(markdown))
        assert parsed.code == [name]
        assert "img" not in parsed.tags and "script" not in parsed.tags and "a" not in parsed.tags
        assert tags is None or [t for t in parsed.tags if t != "p"] == tags
        assert "$" not in literal(name) and "`" not in literal(name) and "\n" not in literal(name)


NAME = "x`<img src=x onerror=\"window.ran=1;document.title='ran'\">`$x$ \"double\" 'single'.png"


@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="chromium/chromedriver absent (make test installs "
                    "Debian's chromium and chromium-driver when it can)")
def test_a_report_on_a_file_named_with_html_and_math_runs_no_script_in_a_browser(tmp_path, monkeypatch):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    image = tmp_path / NAME
    Image.new("RGB", (8, 8), (200, 30, 30)).save(image, format="PNG")
    folder, out = tmp_path / "notebooks", tmp_path / "reports"
    folder.mkdir()
    parameters = nbformat.v4.new_code_cell('profile = "quick"')
    parameters.metadata["tags"] = ["parameters"]
    cells = [parameters, nbformat.v4.new_code_cell(
        "from IPython.display import display\nfrom pnf.report import start, text\n"
        f"report = start(profile, 'image', source={str(image)!r})\ndisplay(report.how_we_ran())\n"
        "display(text.markdown_table(['data', 'verdict'], [[text.literal(report.source), "
        "text.verdict({'verdict': 'undecided', 'note': report.source})]]))")]
    nbformat.write(nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}}), folder / "nasty.ipynb")
    assert render([str(folder / "nasty.ipynb"), "--out", str(out), "--profile", "tiny", "--jobs", "1"]) == 0
    monkeypatch.setenv("PNF_REPORTS", str(out))
    scorecard.record("fig1-wavelet-psnr-epoch10", {"esgd": (20.0, 0.0, 1), "adam": (19.0, 0.0, 1)}, "tiny", False,
                     str(image), diverged=[NAME])
    write_index(out)

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        for page, shown in (("nasty.html", 2), ("index.html", 1)):
            driver.get((out / page).as_uri())
            assert driver.execute_script("return window.ran === undefined && document.title !== 'ran'"), page
            assert driver.execute_script("return document.querySelectorAll('img[onerror]').length") == 0, page
            codes = [element.text for element in driver.find_elements(By.TAG_NAME, "code")]
            assert sum(str(image) in text for text in codes) >= shown, (page, codes)
    finally:
        driver.quit()
