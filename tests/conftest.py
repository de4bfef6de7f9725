"""Tests run single-threaded: their tensors are tiny, and several processes side by side
on a small machine must not oversubscribe its cores (subprocesses inherit this)."""

import os

os.environ["OMP_NUM_THREADS"] = "1"

import torch  # noqa: E402

torch.set_num_threads(1)
