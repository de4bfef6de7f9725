"""The paper's numbers we compare against, in one place, with where each comes from.

Sources (`../shared/paper_inventory.md`): "fig1" is the teaser figure and its caption;
"readme" the convergence plots of the official README (values read off log plots,
approximate); "secondary" a summary of the paper, to be treated with care.
"""

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
    # who wins at the end, per activation
    "winner": {"gaussian": "esgd", "sine": "esgd", "wavelet": "esgd", "relu": "adam"},
}

# Fig. 1d/e: wavelet field on the lion, PSNR (dB) at epoch 10.
FIG1_WAVELET_PSNR = {"source": "fig1", "epoch": 10, "values": {"adam": 26.61, "esgd": 29.36}}
