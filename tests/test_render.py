"""pnf.render: every report executed in a fresh kernel, whatever the one before left; only stale ones."""

import os
import time

import nbformat
import pytest

from pnf.render import main


def notebook(folder, name, *sources):
    """A notebook `name`.ipynb in `folder`: a tagged parameters cell, then one code cell per source."""
    parameters = nbformat.v4.new_code_cell('profile = "quick"')
    parameters.metadata["tags"] = ["parameters"]
    cells = [parameters, *(nbformat.v4.new_code_cell(source) for source in sources)]
    path = folder / f"{name}.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}}), path)
    return path


def outputs(executed):
    return "".join(output.get("text", "") for cell in nbformat.read(executed, as_version=4).cells
                   for output in cell.get("outputs", []))


POLLUTE = """import os, sys, warnings, numpy as np, torch, matplotlib, matplotlib.pyplot as plt
from pnf.fields import ACTIVATIONS
leaked = 1
plt.figure()
torch.set_default_dtype(torch.float64)
os.environ["PNF_DATA"] = "/elsewhere"
matplotlib.rcParams["lines.linewidth"] = 7.0
np.random.seed(0)
sys.path.append("/elsewhere")
warnings.simplefilter("ignore")
ACTIVATIONS["leaked"] = ACTIVATIONS["sine"]
os.chdir("/")
print(profile)"""
PROBE = """import os, sys, warnings, numpy as np, torch, matplotlib, matplotlib.pyplot as plt
from pnf.fields import ACTIVATIONS
print('leaked' in globals(), len(plt.get_fignums()), os.getcwd(), torch.get_default_dtype(), os.environ.get("PNF_DATA"),
      matplotlib.rcParams["lines.linewidth"], "/elsewhere" in sys.path, len(warnings.filters), "leaked" in ACTIVATIONS,
      np.random.random() == np.random.RandomState(0).random_sample(), profile)"""


def test_every_report_runs_in_a_fresh_kernel_whatever_the_one_before_left(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("PNF_DATA", raising=False)
    folder, out = tmp_path / "notebooks", tmp_path / "reports"
    folder.mkdir()
    polluter, probe = notebook(folder, "polluter", POLLUTE), notebook(folder, "probe", PROBE)
    assert main([str(probe), "--out", str(out / "alone"), "--profile", "tiny"]) == 0
    assert main([str(polluter), str(probe), "--out", str(out / "after"), "--profile", "tiny", "--jobs", "1"]) == 0
    assert outputs(out / "after" / "polluter.ipynb") == "tiny\n"  # the parameter injected
    alone = outputs(out / "alone" / "probe.ipynb")
    assert alone.startswith(f"False 0 {folder} torch.float32 None 1.5 False ") and alone.endswith(" False False tiny\n")
    assert outputs(out / "after" / "probe.ipynb") == alone
    page = (out / "after" / "probe.html").read_text()
    assert "highlight hl-ipython3" not in page and "cdnjs" not in page  # code hidden, nothing from CDNs
    assert "[2/2] probe: rendered" in capsys.readouterr().out


def test_a_dead_kernel_fails_its_report_alone_naming_the_cause(tmp_path, capsys):
    folder, out = tmp_path / "notebooks", tmp_path / "reports"
    folder.mkdir()
    pages = [notebook(folder, "before", "print(1)"), notebook(folder, "exits", "import os\nos._exit(3)"),
             notebook(folder, "killed", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"),
             notebook(folder, "after", "print(2)")]
    assert main([*map(str, pages), "--out", str(out), "--profile", "tiny", "--jobs", "2", "--index"]) == 1
    captured = capsys.readouterr()
    assert "exits failed:\nkernel died (exit code 3)" in captured.err
    assert "killed failed:\nkernel died (signal 9, SIGKILL)" in captured.err
    assert "2 failed: " in captured.err and "before failed" not in captured.err and "index failed" not in captured.err
    assert {page.name for page in out.glob("*.html")} == {"before.html", "after.html", "index.html"}
    assert (out / "exits.ipynb").exists() and (out / "killed.ipynb").exists()  # what ran before the kernel died


def test_only_stale_reports_are_rendered_and_a_failure_leaves_no_html(tmp_path, capsys):
    folder, out = tmp_path / "notebooks", tmp_path / "reports"
    folder.mkdir()
    fine, broken = notebook(folder, "fine", "print(1)"), notebook(folder, "broken", "ratio = 1 / 0")
    dependency = tmp_path / "code.py"
    dependency.write_text("")
    arguments = ["--out", str(out), "--profile", "tiny", "--jobs", "2", "--depends-on", str(dependency), "--"]
    assert main([*arguments, str(fine)]) == 0
    rendered = (out / "fine.html").stat().st_mtime
    (out / "broken.html").write_text("stale")
    os.utime(out / "broken.html", (0, 0))  # older than its notebook
    assert main([*arguments, str(fine), str(broken)]) == 1
    captured = capsys.readouterr()
    assert "rendering 1 report(s)" in captured.out and "ZeroDivisionError" in captured.err
    assert not (out / "broken.html").exists() and (out / "broken.ipynb").exists()  # the error is kept there
    assert (out / "fine.html").stat().st_mtime == rendered  # up to date: not rendered again
    time.sleep(0.01)
    os.utime(dependency)  # a dependency changed: every report is stale again
    assert main([*arguments, str(fine)]) == 0
    assert (out / "fine.html").stat().st_mtime > rendered


@pytest.mark.parametrize("arguments, message", [
    (["--jobs", "0"], "--jobs 0: use a positive number of kernels"),
    (["--jobs", "two"], "argument --jobs: invalid int value: 'two'"),
    (["--depends-on", "absent.py", "--"], "no such file: absent.py"),
])
def test_bad_arguments_are_refused_naming_them_and_nothing_is_written(tmp_path, capsys, arguments, message):
    folder, out = tmp_path / "notebooks", tmp_path / "reports"
    folder.mkdir()
    page = notebook(folder, "page", "print(1)")
    with pytest.raises(SystemExit) as exit:
        main(["--out", str(out), "--profile", "tiny", *arguments, str(page)])
    assert exit.value.code == 2 and message in capsys.readouterr().err and not out.exists()


def test_a_missing_notebook_is_named(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main([str(tmp_path / "absent.ipynb"), "--out", str(tmp_path / "reports"), "--profile", "tiny"])
    assert f"no such notebook: {tmp_path / 'absent.ipynb'}" in capsys.readouterr().err
    assert not (tmp_path / "reports").exists()


def test_the_longest_report_last_time_starts_first(tmp_path, capsys):
    folder, out = tmp_path / "notebooks", tmp_path / "reports"
    folder.mkdir()
    quick, slow = notebook(folder, "quick", "print(1)"), notebook(folder, "slow", "import time\ntime.sleep(0.5)")
    arguments = ["--out", str(out), "--profile", "tiny", "--jobs", "1", "--", str(quick), str(slow)]
    assert main(arguments) == 0
    for page in out.glob("*.html"):
        page.unlink()
    assert main(arguments) == 0
    assert capsys.readouterr().out.split("\n[1/2] ")[-1].startswith("slow: rendered")
