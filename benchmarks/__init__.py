"""`make bench`: speed of pnf against the paper's code design and the machine's limit.

Each module measures one question and returns `Table`s; `benchmarks/run.py` runs them
side by side in one process and writes `reports/bench.md` and `reports/bench.json`.
"""
