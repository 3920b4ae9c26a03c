import pytest
import torch


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)


def smooth_images(b: int, c: int, size: int, seed: int = 0) -> torch.Tensor:
    """Smooth random images in [0, 1] (bilinear upsampling of coarse noise): stand-ins for photographs."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(b, c, max(2, size // 4), max(2, size // 4), generator=g)
    return torch.nn.functional.interpolate(coarse, size=size, mode="bilinear", align_corners=False)
