"""Report helpers for the notebooks: `start` (the preamble), `stats`, `plots`, `text`, the
`scorecard` of paper claims, the site `index` and the run `explorer`."""

from pnf.report.preamble import Report, start

__all__ = ["Report", "start"]
