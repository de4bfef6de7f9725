"""The paper: its citation and every fact we compare against, in one place, with where
each comes from. Which data is the paper's is said by the data registry (`pnf.data`).

Sources: "fig1" is the teaser figure and its caption; "readme" the convergence plots of
the official README (values read off log plots, approximate); "secondary" a summary of
the paper, to be treated with care.
"""

AUTHORS = "Chng, Saratchandran, Lucey"
TITLE = "Preconditioners for the Stochastic Training of Neural Fields"
VENUE = "CVPR 2025 (arXiv 2402.08784)"
CITATION = f"{AUTHORS}, *{TITLE}*, {VENUE}"

# The paper's ordering per field: ESGD ahead for the Gaussian, sine and wavelet fields, Adam for ReLU(PE).
WINNER = {"gaussian": "esgd", "sine": "esgd", "wavelet": "esgd", "relu": "adam"}

# Final full-image MSE at epoch 200, 2D image fitting (README convergence plots).
IMAGE_FINAL_MSE = {
    "source": "readme",
    "epoch": 200,
    "values": {
        ("gaussian", "adam"): 8e-4, ("gaussian", "esgd"): 2.8e-4,
        ("sine", "adam"): 1.4e-3, ("sine", "esgd"): 7.5e-5,
        ("wavelet", "adam"): 6e-4, ("wavelet", "esgd"): 8e-5,
        ("relu", "adam"): 2e-4, ("relu", "esgd"): 8.5e-4,
    },
    "winner": WINNER,  # who wins at the end, per activation
}

# Fig. 1d/e: wavelet field on the lion, PSNR (dB) at epoch 10.
FIG1_WAVELET_PSNR = {"source": "fig1", "epoch": 10, "values": {"adam": 26.61, "esgd": 29.36}}

# Fig. 1b: 3D occupancy of the Armadillo, IoU at epoch 5,000 (read off the teaser plot, approximate).
FIG1_OCCUPANCY_IOU = {
    "source": "fig1",
    "epoch": 5000,
    "values": {("sine", "esgd"): 0.995, ("sine", "adam"): 0.99, ("relu", "adam"): 0.99, ("relu", "esgd"): 0.974},
    "winner": {"sine": "esgd", "relu": "adam"},
    # Fig. 1f/g: sine reconstructions at epoch 1,000, ESGD visibly better than Adam; both
    # orderings of Fig. 1b are plain in the plot from there on, so they are tested from it
    "snapshot_epoch": 1000,
}

# Fig. 1c: NeRF training MSE at iteration 200,000 (read off the teaser's log plot, approximate);
# Fig. 1h/i: mean of the Gaussian field's error maps. The scene is forward-facing (LLFF-like).
FIG1_NERF = {
    "source": "fig1",
    "iterations": 200_000,
    # the Gaussian curves of Fig. 1c are apart (ESGD below) from about a tenth of training on
    "ordering_iterations": 20_000,
    "train_mse": {("gaussian", "esgd"): 6e-3, ("relu", "adam"): 1.5e-2, ("relu", "esgd"): 1.5e-2},
    "train_mse_note": "Gaussian-ESGD lowest (~6e-3), Gaussian-Adam slightly above, ReLU(PE) both ~1.5e-2",
    "error": {"adam": 0.0743, "esgd": 0.0695},
}

# Test PSNR (dB) of the Gaussian NeRF on LLFF scenes (a secondary summary of the paper).
NERF_LLFF_PSNR = {
    "source": "secondary",
    "values": {"fern": (24.38, 24.41), "flower": (25.67, 25.65), "room": (31.60, 30.52), "trex": (22.04, 22.21)},
    "columns": ("adam", "esgd"),
}

# The optimizers the paper compares (its README's comparison), by our registry's names.
PAPER_OPTIMIZERS = ("adam", "sgd", "esgd", "adahessian", "adahessian_j", "kfac_adam", "shampoo")
