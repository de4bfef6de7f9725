"""What reports say in words: labels, formatted values, Markdown tables and notes.

A string that a report did not write itself (a file or data name, an option value, a
note) reaches the page through `literal` or `escaped`, so that whatever characters it
holds, Markdown, HTML and MathJax show it as it is.
"""

import math

from IPython.display import Markdown

from pnf.fields import ACTIVATIONS
from pnf.optim import OPTIMIZERS


PLAIN = set(" -./:,=+@%()")  # characters that mean nothing to Markdown, HTML or MathJax inside a line


def escaped(value) -> str:
    """`str(value)` as Markdown text shown as it is: every character but letters, digits and
    those of `PLAIN` becomes an HTML character reference (`<` is `&#60;`, a backtick `&#96;`,
    `$` `&#36;`, a newline `&#10;`), so none starts a tag, a code span, emphasis, a table
    cell, a new line or mathematics."""
    return "".join(char if char.isalnum() or char in PLAIN else f"&#{ord(char)};" for char in str(value))


def literal(value) -> str:
    """`value` (a file or data name, an option value) as inline code in Markdown or HTML:
    `<code>` around `escaped(value)` (MathJax leaves code alone)."""
    return f"<code>{escaped(value)}</code>"


def label(activation: str | None, optimizer: str | None = None) -> str:
    """"wavelet (Gabor) · ESGD"; the field's or the optimizer's label alone when the other is None."""
    return " · ".join(name for name in (activation and ACTIVATIONS[activation].label,
                                         optimizer and OPTIMIZERS[optimizer].label) if name)


def labels(names, registry=ACTIVATIONS) -> str:
    """The labels of `names`, fields (or entries of another `registry`, such as
    `OPTIMIZERS`), comma-separated ("none" when there are none)."""
    return ", ".join(registry[name].label for name in names) or "none"


def format_value(mean: float, spread: float, count: int, digits: int = 2, scientific: bool = False) -> str:
    """"27.31 ± 0.40 (3 seeds)"; one value for one seed; "diverged / not run" for none."""
    if count == 0 or not math.isfinite(mean):
        return "diverged / not run"
    number = f"{{:.{digits}{'e' if scientific else 'f'}}}".format
    return number(mean) if count == 1 else f"{number(mean)} ± {number(spread)} ({count} seeds)"


def markdown_table(header: list[str], rows: list[list]) -> Markdown:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return Markdown("\n".join(lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]))


def bullets(notes: list[str]) -> Markdown:
    return Markdown("\n".join(f"- {note}" for note in notes if note))


def yes_no(holds: bool) -> str:
    return "yes" if holds else "**no**"


def orderings(winners: dict, expected: dict, what: str) -> str:
    """Which fields' winner (from `stats.winners`) is the paper's (`expected`, per field)."""
    agree = [a for a in winners if a in expected and winners[a]["winner"] == expected[a]]
    differ = [a for a in winners if a in expected and a not in agree]
    return (f"The paper's ordering of {what} (means over seeds) holds here for: {labels(agree)}; it does **not** "
            f"hold for: {labels(differ)}" + (" (nothing was tuned to change it)" if differ else "") + ". The "
            "scorecard's verdicts also weigh the spread across seeds and the epoch the paper claims at.")


def verdict(entry: dict) -> str:
    """"**undecided** (the gap is within ...)": a scorecard record's verdict, with its note."""
    note = entry["note"].removeprefix(entry["verdict"]).strip(" :")
    return f"**{escaped(entry['verdict'])}**" + (f" ({escaped(note)})" if note else "")


def shorter_run(epochs: int, paper_epochs: int, target: str, unit: str = "epoch") -> str:
    """A note when these runs stop before the paper's, else nothing."""
    if epochs >= paper_epochs:
        return ""
    return (f"These runs stop at {unit} {epochs:,}, the paper's at {paper_epochs:,}: absolute values are "
            f"early-training ones and orderings can still change; compare orderings (`make {target} PROFILE=paper`).")


def diverged_note(results) -> str:
    """Which settings diverged (non-finite loss) and at which step, else nothing."""
    runs = [r for r in results if r.status == "diverged"]
    return ("**Diverged** (non-finite loss, no metric; a rival of a diverged run wins by default): " + ", ".join(
        f"{label(r.config.activation, r.config.optimizer)} (step {r.diverged_step})" for r in runs)) if runs else ""
