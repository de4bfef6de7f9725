"""2D image fitting: coordinates `[H*W, 2]` -> RGB `[H*W, 3]`, MSE loss, PSNR metric."""

import numpy as np
import torch
import torch.nn.functional as F

from pnf.data.images import load_image, pixel_grid
from pnf.fields import make_field
from pnf.metrics import psnr
from pnf.tasks import register

EVAL_CHUNK = 65536  # pixels per forward pass when evaluating the whole image


class ImageFitting:
    """Fit one RGB image; an epoch is one pass over all its pixels."""

    metric = "psnr"

    def __init__(self, pixels: torch.Tensor, device: torch.device):
        self.shape = tuple(pixels.shape)  # (H, W, 3)
        self.device = device
        self.coords = pixel_grid(*self.shape[:2]).to(device)
        self.colors = pixels.reshape(-1, 3).to(device)

    def make_model(self, activation: str, **hyperparameters) -> torch.nn.Module:
        return make_field(activation, 2, 3, **hyperparameters).to(self.device)

    def epoch_data(self, epoch: int, generator: torch.Generator):
        return self.coords, self.colors

    def loss(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(prediction, target)

    @torch.no_grad()
    def predict(self, model) -> torch.Tensor:
        """The field's image, `[H, W, 3]`, evaluated in chunks."""
        chunks = [model(self.coords[i : i + EVAL_CHUNK]) for i in range(0, len(self.coords), EVAL_CHUNK)]
        return torch.cat(chunks).reshape(self.shape)

    def evaluate(self, model) -> tuple[dict[str, float], np.ndarray]:
        """MSE and PSNR (dB, peak 1) of the whole image, and the image `[H, W, 3]`
        clipped to [0, 1] (PSNR is of the clipped image)."""
        prediction = self.predict(model)
        target = self.colors.reshape(self.shape)
        mse = F.mse_loss(prediction, target).item()
        image = prediction.clamp(0, 1).cpu().numpy()
        return {"mse": mse, "psnr": psnr(image, target.cpu().numpy())}, image

    def target(self) -> np.ndarray:
        return self.colors.reshape(self.shape).cpu().numpy()


@register("image")
def build(config, device) -> ImageFitting:
    image = load_image(config.data, config.resolution)
    return ImageFitting(image.pixels, device)


def image_configs(
    settings, source: str, activations: list[str], optimizers: list[str], optimizer_options: dict | None = None
) -> list:
    """RunConfigs of every activation × optimizer × seed at `settings` (an ImageProfile);
    `optimizer_options` maps an optimizer to changes of its preset."""
    from pnf.runs import RunConfig

    return [
        RunConfig(
            task="image", activation=activation, optimizer=optimizer, data=source,
            resolution=settings.resolution, epochs=settings.epochs, batch_size=settings.batch_size,
            seed=seed, eval_every=settings.eval_every, snapshot_epochs=(settings.snapshot_epoch,),
            optimizer_options=(optimizer_options or {}).get(optimizer, {}),
        )
        for activation in activations
        for optimizer in optimizers
        for seed in range(settings.seeds)
    ]
