"""Runs: the cache of results (`pnf.runs.cache`) and where missing runs are computed
(`pnf.runs.executors`)."""
