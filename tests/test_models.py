import pytest
import torch

from dirac.degradations import GeometricNoiseSchedule
from dirac.models import PRESETS, NCSNpp, NCSNppConfig, Reconstructor, build_ncsnpp, count_parameters


def test_tiny_preset_is_tiny_and_small_is_about_2m():
    assert count_parameters(build_ncsnpp("tiny")) < 100_000
    n_small = count_parameters(build_ncsnpp("small"))
    assert 1_000_000 < n_small < 3_000_000


def test_output_shape_and_residual_form():
    net = build_ncsnpp("tiny", channels=1)
    y = torch.rand(3, 1, 8, 8)
    out = net(y, torch.tensor([0.01, 0.02, 0.05]))
    assert out.shape == y.shape and torch.isfinite(out).all()
    # the output layers (conv_out and the skip path's output convs) start at zero, as in NCSN++: a fresh
    # network is exactly the identity, which shows that it predicts a residual on top of its input
    assert torch.allclose(net(y, 0.03), y)
    assert torch.equal(net.unet.conv_out.weight, torch.zeros_like(net.unet.conv_out.weight))


def test_effective_output_scale_does_not_depend_on_sigma():
    """diffusers divides a fourier-embedded UNet's output by the timestep; NCSNpp must undo it.

    With the time embedding made constant, everything inside the UNet is independent of sigma, so the
    predicted residual must be identical for sigma = 0.01 and 0.05 (it would differ 5x without the fix).
    """
    torch.manual_seed(0)
    net = build_ncsnpp("tiny")
    for conv in [net.unet.conv_out] + [b.skip_conv for b in net.unet.up_blocks if b.skip_conv is not None]:
        torch.nn.init.normal_(conv.weight, std=0.1)  # undo the zero init so the output is not trivially 0
    lin = net.unet.time_embedding.linear_2
    torch.nn.init.zeros_(lin.weight)
    y = torch.rand(2, 3, 16, 16)
    r1 = net(y, 0.01) - y
    r5 = net(y, 0.05) - y
    assert r1.abs().mean() > 1e-3
    assert torch.allclose(r1, r5, atol=1e-6)
    raw1 = net.unet(2 * y - 1, torch.full((2,), 0.01)).sample
    raw5 = net.unet(2 * y - 1, torch.full((2,), 0.05)).sample
    assert torch.allclose(raw1 / raw5, torch.full_like(raw1, 5.0), rtol=1e-3)  # the division we undo


def test_size_and_channel_errors():
    with pytest.raises(ValueError, match="not divisible"):
        NCSNpp(
            NCSNppConfig(image_size=30, block_out_channels=(16, 32, 32), norm_num_groups=8, attention_resolutions=())
        )
    with pytest.raises(ValueError, match=r"\[48, 96\] do not fit diffusers' skip up-blocks.*144"):
        NCSNpp(NCSNppConfig(image_size=16, block_out_channels=(48, 96), norm_num_groups=16, attention_resolutions=()))
    net = build_ncsnpp("small")
    with pytest.raises(ValueError, match="multiples of 4"):
        net(torch.rand(1, 3, 30, 30), 0.02)
    with pytest.raises(ValueError, match="3-channel"):
        net(torch.rand(1, 1, 32, 32), 0.02)
    with pytest.raises(ValueError, match="unknown NCSN"):
        build_ncsnpp("tiny", widths=3)
    with pytest.raises(ValueError, match="unknown NCSN\\+\\+ preset"):
        build_ncsnpp("huge")


def test_reconstructor_conditions_on_sigma_of_t():
    seen = {}

    class Spy(torch.nn.Module):
        def forward(self, y, sigma):
            seen["sigma"] = sigma
            return y

    noise = GeometricNoiseSchedule(0.01, 0.05)
    rec = Reconstructor(Spy(), noise)
    rec(torch.rand(2, 3, 8, 8), torch.tensor([0.0, 1.0]))
    assert torch.allclose(seen["sigma"], torch.tensor([0.01, 0.05]))


def test_paper_preset_architecture_matches_the_paper_roughly():
    cfg = PRESETS["paper"]
    assert cfg.block_out_channels == (128, 128, 256, 256, 256, 256, 256) and cfg.image_size == 256
    assert cfg.attention_resolutions == (16,) and cfg.dropout == 0.1 and cfg.layers_per_block == 2
