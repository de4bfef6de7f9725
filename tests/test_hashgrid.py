"""The hash-grid field (Instant-NGP's multiresolution hash encoding and ReLU MLP): its
indexing, interpolation, sparse gradients, a fit, its curvature for ESGD, bad presets."""

import math

import pytest
import torch
import torch.nn.functional as F

from pnf.checks import ConfigError
from pnf.config import RunConfig
from pnf.data.images import EMBEDDED_IMAGE, load_image, pixel_grid
from pnf.fields import ACTIVATIONS, HASHGRID_CPU, HashEncoding, level_resolutions, make_field
from pnf.metrics import psnr
from pnf.optim import make_optimizer
from pnf.studies import curvature
from pnf.tasks.image import ImageFitting
from pnf.train import optimizer_step

UINT32 = 2**32


def test_level_resolutions_grow_geometrically_from_base_to_finest():
    assert level_resolutions(16, 16, 2048) == [math.floor(16 * 128 ** (level / 15)) for level in range(16)]
    assert level_resolutions(16, 16, 2048)[-1] == 2048 and level_resolutions(1, 16, 16) == [16]


def test_rows_are_dense_at_coarse_levels_and_hashed_with_instant_ngp_primes_at_fine_ones():
    # 2D, T = 16: level 0 (N = 2, 3² = 9 vertices) is dense, level 1 (N = 7, 64 > 16) is hashed
    encoding = HashEncoding(2, levels=2, features=1, log2_table=4, base_resolution=2, finest_resolution=7)
    assert encoding.dense.tolist() == [True, False] and encoding.table.shape == (9 + 16, 1)
    points = torch.tensor([[-1.0, -1.0], [0.1, -0.6], [0.99, 0.3], [1.0, 1.0]])
    rows, _ = encoding.rows(points)
    for point, point_rows in zip(points.tolist(), rows):
        for level, (resolution, start) in enumerate([(2, 0), (7, 9)]):
            cell = [min(math.floor((x + 1) / 2 * resolution), resolution - 1) for x in point]
            corners = [(cell[0] + (c & 1), cell[1] + (c >> 1 & 1)) for c in range(4)]
            if level == 0:
                expected = [start + i + 3 * j for i, j in corners]
            else:  # Instant-NGP's uint32 arithmetic, mod T
                expected = [start + (i ^ j * 2654435761 % UINT32) % 16 for i, j in corners]
            assert point_rows[level].tolist() == expected
    # 3D, the third prime: 9³ vertices in T = 32 rows
    encoding = HashEncoding(3, levels=1, features=1, log2_table=5, base_resolution=8, finest_resolution=8)
    rows, _ = encoding.rows(torch.tensor([[0.3, -0.2, 0.7]]))
    cell = [math.floor((x + 1) / 2 * 8) for x in (0.3, -0.2, 0.7)]
    expected = [(cell[0] + (c & 1) ^ (cell[1] + (c >> 1 & 1)) * 2654435761 % UINT32
                 ^ (cell[2] + (c >> 2 & 1)) * 805459861 % UINT32) % 32 for c in range(8)]
    assert rows[0, 0].tolist() == expected


@pytest.mark.parametrize("dim", [2, 3])
def test_interpolation_reproduces_a_linear_function_held_by_the_table(dim):
    """Every level dense: vertex v of level l holds a·(v / N_l) + b, so the encoding of x is
    a·(x + 1)/2 + b at every level (bi/trilinear interpolation is exact on affine functions)."""
    encoding = HashEncoding(dim, levels=3, features=1, log2_table=12, base_resolution=3, finest_resolution=9).double()
    assert encoding.dense.all()
    slope, offset = torch.tensor([0.7, -1.3, 2.1][:dim], dtype=torch.float64), 0.25
    with torch.no_grad():
        for resolution, start, stride in zip(encoding.resolutions.tolist(), encoding.starts, encoding.strides):
            count = (int(resolution) + 1) ** dim
            vertices = (torch.arange(count)[:, None] // stride) % (int(resolution) + 1)  # [count, d]
            encoding.table[start : start + count, 0] = vertices.double() / resolution @ slope + offset
    points = torch.rand(50, dim, dtype=torch.float64) * 2 - 1
    expected = ((points + 1) / 2 @ slope + offset)[:, None].expand(-1, 3)
    torch.testing.assert_close(encoding(points), expected, rtol=0, atol=1e-12)


def test_interpolation_weights_sum_to_one_at_hashed_levels_too():
    encoding = make_field("hashgrid", 3, 1)[0].encoding
    assert not encoding.dense.all()
    with torch.no_grad():
        encoding.table.fill_(1.0)
    torch.testing.assert_close(encoding(torch.rand(100, 3) * 2 - 1), torch.ones(100, 8 * 2))


@pytest.mark.parametrize("dim", [2, 3])
def test_a_gradient_touches_only_the_cell_corners_of_each_level(dim):
    torch.manual_seed(0)
    encoding = make_field("hashgrid", dim, 1)[0].encoding
    points = torch.rand(5, dim) * 2 - 1
    (encoding(points) * torch.rand(5, 16)).sum().backward()
    touched = set(encoding.rows(points)[0].reshape(-1).tolist())
    nonzero = (encoding.table.grad != 0).any(1).nonzero().reshape(-1).tolist()
    assert set(nonzero) == touched and len(touched) <= 5 * 8 * 2**dim
    assert int((encoding.table.grad != 0).sum()) == 2 * len(touched)  # both features of each touched row


def test_adam_with_instant_ngp_settings_fits_a_small_image():
    torch.manual_seed(0)
    pixels = load_image(EMBEDDED_IMAGE, 32).pixels
    target, coords = pixels.reshape(-1, 3), pixel_grid(32, 32)
    model = make_field("hashgrid", 2, 3, **{**HASHGRID_CPU, "log2_table": 10, "finest_resolution": 32})
    adam = make_optimizer("adam", model.parameters(), "hashgrid", lr=1e-2, betas=(0.9, 0.99), eps=1e-15)

    def image_psnr():
        with torch.no_grad():
            return psnr(model(coords).clamp(0, 1).reshape(32, 32, 3).numpy(), pixels.numpy())

    initial = image_psnr()
    for _ in range(150):
        optimizer_step(model, adam, F.mse_loss, coords, target)
    assert initial < 12 and image_psnr() > initial + 15


def hv_by_torch_func(model, x, y, vectors):
    """Hv of `mse(model(x), y)` by forward-over-reverse (`torch.func`), a path independent of double backward."""
    params = {name: p.detach() for name, p in model.named_parameters()}

    def loss(weights):  # written out: torch.func's forward mode fails on F.mse_loss's backward (torch 2.x)
        return ((torch.func.functional_call(model, weights, (x,)) - y) ** 2).mean()

    _, products = torch.func.jvp(torch.func.grad(loss), (params,), (dict(zip(params, vectors)),))
    return list(products.values())


@pytest.mark.parametrize("optimizer", ["esgd", "esgd_primed"])
def test_esgd_hessian_vector_products_on_a_hash_grid_equal_torch_func(optimizer):
    torch.manual_seed(0)
    model = make_field("hashgrid", 2, 3, hidden_features=16, hidden_layers=1).double()
    x, y = torch.rand(64, 2, dtype=torch.float64) * 2 - 1, torch.rand(64, 3, dtype=torch.float64)
    chosen = make_optimizer(optimizer, model.parameters(), "hashgrid", seed=3, lr=0.0)
    seen, update = [], chosen.update
    chosen.update = lambda params, products, vectors: (seen.append((products, vectors)),
                                                       update(params, products, vectors))
    optimizer_step(model, chosen, F.mse_loss, x, y)  # the first step refreshes the curvature
    products, vectors = seen[0]
    reference = hv_by_torch_func(model, x, y, vectors)  # at lr 0 the step leaves the point where Hv was taken
    for mine, theirs in zip(products, reference):
        assert float((mine - theirs).abs().max()) <= 1e-6 * float(max(r.abs().max() for r in reference))
    assert float(products[0].abs().max()) > 0  # the table's curvature is there


def test_hv_by_double_backward_has_the_density_of_the_exact_hessian():
    torch.manual_seed(0)
    model = make_field("sine", 2, 3, hidden_features=6, hidden_layers=1).double()
    x, y = torch.rand(40, 2, dtype=torch.float64) * 2 - 1, torch.rand(40, 3, dtype=torch.float64)
    exact = curvature.hv_density(curvature.loss_hessian(model, x, y), seed=2)
    assert curvature.field_hv_density(model, x, y, seed=2) == exact > 0.9


def test_hash_grid_hv_is_sparse_on_a_small_batch():
    torch.manual_seed(0)
    model = make_field("hashgrid", 2, 3, **HASHGRID_CPU)
    x, y = torch.rand(256, 2) * 2 - 1, torch.rand(256, 3)
    assert curvature.field_hv_density(model, x, y, probes=2) < 0.1


def test_tasks_build_it_from_a_config():
    config = RunConfig(task="image", activation="hashgrid", optimizer="adam", data=EMBEDDED_IMAGE, resolution=8,
                       epochs=1, batch_size=8, field_options=HASHGRID_CPU)
    image = ImageFitting(torch.rand(8, 8, 3), torch.device("cpu"))
    model = image.make_model(config.activation, **config.field_options)
    assert model(image.coords).shape == (64, 3) and ACTIVATIONS["hashgrid"].label.startswith("hash grid")
    assert make_field("hashgrid", 3, 1, **HASHGRID_CPU)(torch.rand(4, 3)).shape == (4, 1)


@pytest.mark.parametrize("setting, value, accepted", [
    ("levels", 0, "from 1 to 64"),
    ("log2_table", 40, "from 1 to 24"),
    ("finest_resolution", 8, r"\(at least base_resolution = 16\) must be an integer from 16 to"),
    ("features", 2.5, "from 1 to 64"),
])
def test_bad_presets_are_refused_naming_the_setting_the_value_and_the_range(setting, value, accepted):
    with pytest.raises(ConfigError, match=f"hashgrid {setting}.*{accepted}.*not {value!r}"):
        make_field("hashgrid", 2, 3, **{**HASHGRID_CPU, setting: value})
