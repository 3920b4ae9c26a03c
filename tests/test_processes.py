"""The processes of issue 13 (super-resolution, box and random masks, a user's kernel): operator properties,
schedules, kernel files, the measurement-noise rule, unknown names, the classical peers and one end-to-end run."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import smooth_images
from helpers import assert_one_line

from dirac.baselines import tikhonov
from dirac.baselines.spectral import spectral_operator
from dirac.degradations import (
    BoxInpaintingProcess,
    GeometricNoiseSchedule,
    KernelBlurProcess,
    RandomMaskProcess,
    SuperResolutionProcess,
    build_process,
    check_measurement_noise,
    load_kernel,
    process_from_dict,
    top_up_noise,
)
from dirac.degradations.resample import dct_matrix, dct_upsample, lowpass_gains
from dirac.metrics.fidelity import psnr
from dirac.scheduling import greedy_schedule

NEW = [
    SuperResolutionProcess(2.0),
    SuperResolutionProcess(4.0),
    BoxInpaintingProcess(6.0),
    RandomMaskProcess(0.7, seed=3),
    KernelBlurProcess("example"),
]


def textured(b: int, c: int, size: int, seed: int = 0) -> torch.Tensor:
    """Smooth images plus fine texture (edges and noise at every scale), in [0, 1]."""
    g = torch.Generator().manual_seed(seed + 1)
    return (0.8 * smooth_images(b, c, size, seed) + 0.2 * torch.rand(b, c, size, size, generator=g)).double()


@pytest.mark.parametrize("proc", NEW, ids=lambda p: f"{p.kind}")
def test_adjoint_identity_and_t0_identity(proc):
    """<A_t x, y> = <x, A_t^T y> for a batch of different t (two image shapes), and A_0 = I."""
    g = torch.Generator().manual_seed(0)
    for shape in ((3, 2, 13, 11), (3, 3, 16, 16)):
        x, y = (
            torch.randn(*shape, generator=g, dtype=torch.float64),
            torch.randn(*shape, generator=g, dtype=torch.float64),
        )
        t = torch.tensor([0.0, 0.45, 1.0], dtype=torch.float64)
        lhs, rhs = (proc.degrade(x, t) * y).flatten(1).sum(1), (x * proc.adjoint(y, t)).flatten(1).sum(1)
        assert torch.allclose(lhs, rhs, rtol=1e-10, atol=1e-10)
        assert torch.allclose(proc.degrade(x, 0.0), x, atol=1e-10)
        assert (proc.degrade(x, 1.0) - x).abs().max() > 0.1  # and t = 1 does something


@pytest.mark.parametrize("proc", NEW, ids=lambda p: p.kind)
def test_per_sample_t_equals_one_at_a_time(proc):
    x = textured(4, 3, 16)
    t = torch.tensor([0.05, 0.3, 0.7, 1.0], dtype=torch.float64)
    one = torch.cat([proc.degrade(x[i : i + 1], float(t[i])) for i in range(4)])
    assert torch.allclose(proc.degrade(x, t), one, atol=1e-10)
    adj = torch.cat([proc.adjoint(x[i : i + 1], float(t[i])) for i in range(4)])
    assert torch.allclose(proc.adjoint(x, t), adj, atol=1e-10)


@pytest.mark.parametrize("proc", NEW, ids=lambda p: p.kind)
def test_error_to_the_image_grows_with_t_and_greedy_schedule_runs(proc):
    """The claimed monotone property on a fixed textured batch: ‖x − A_t x‖² non-decreasing in t, per image for the
    processes that guarantee it for every image (sr, masks), on the batch mean for the kernel's dilation."""
    x = textured(4, 3, 16)
    errs = torch.stack([(proc.degrade(x, float(t)) - x).pow(2).flatten(1).sum(1) for t in torch.linspace(0, 1, 11)])
    steps = errs[1:] - errs[:-1]
    per_image = proc.kind != "kernel"
    assert bool((steps >= -1e-12).all()) if per_image else bool((steps.mean(1) >= -1e-12).all())
    assert float(errs[-1].mean()) > float(errs[5].mean()) > 0  # and it does grow
    sched = greedy_schedule(proc, x, num_steps=4, num_candidates=20)
    assert sched.severities[0] == proc.schedule.s_min and sched.severities[-1] == proc.schedule.s_max
    assert len(sched.severities) == 5 and all(
        b > a for a, b in zip(sched.severities, sched.severities[1:], strict=False)
    )


def test_sr_spectra_nested_and_lr_images_are_measurements():
    """h_s(f) non-increasing in s (monotone for every image), A_s = G A_s' with G diagonal in the DCT basis, and a
    DCT-downsampled n/S image upsampled by dct_upsample is exactly A_S x."""
    s = torch.linspace(1, 4, 31, dtype=torch.float64)
    h = lowpass_gains(s, 16)
    assert bool((h[1:] <= h[:-1] + 1e-12).all()) and torch.allclose(h[0], torch.ones(16, dtype=torch.float64))
    proc, x = SuperResolutionProcess(4.0), textured(2, 3, 16)
    a, b = torch.tensor([1.7, 1.7], dtype=torch.float64), torch.tensor([2.9, 2.9], dtype=torch.float64)
    c, ha, hb = dct_matrix(16), lowpass_gains(a[:1], 16)[0], lowpass_gains(b[:1], 16)[0]
    assert bool((hb[ha == 0] == 0).all())  # nothing lost at s' comes back at s
    g_op = c.T @ torch.diag(torch.where(ha > 0, hb / ha.clamp_min(1e-12), torch.zeros_like(ha))) @ c
    assert torch.allclose(torch.einsum("hi,bciw,vw->bchv", g_op, proc.apply(x, a), g_op), proc.apply(x, b), atol=1e-9)
    down = dct_matrix(4).T @ c[:4]  # (4, 16): DCT of 16 samples, keep 4 frequencies, inverse DCT of 4 samples
    lr = torch.einsum("fi,bcij,gj->bcfg", down, x, down) / 4.0  # / (16 / 4): constants stay constant
    assert torch.allclose(dct_upsample(lr, (16, 16)), proc.degrade(x, 1.0), atol=1e-10)
    const = torch.full((1, 1, 16, 16), 0.3, dtype=torch.float64)
    assert torch.allclose(proc.degrade(const, 0.6), const, atol=1e-12)


def test_masks_are_nested_and_box_area_is_continuous():
    box, rnd = BoxInpaintingProcess(12.0), RandomMaskProcess(0.9, seed=5)
    x = torch.ones(1, 1, 32, 32, dtype=torch.float64)
    prev_b = prev_r = None
    for t in torch.linspace(0, 1, 21, dtype=torch.float64):
        mb, mr = box.degrade(x, float(t)), rnd.degrade(x, float(t))
        side = float(box.severity(float(t), 1, x))
        assert abs(float((1 - mb).sum()) - side**2) < 1e-9  # removed area = L^2 exactly (continuous in L)
        assert abs(float((1 - mr).mean()) - float(rnd.severity(float(t), 1, x))) < 0.05  # removed fraction ≈ p
        if prev_b is not None:
            assert bool((mb <= prev_b + 1e-12).all()) and bool((mr <= prev_r).all())
        prev_b, prev_r = mb, mr


def test_random_mask_seed_per_image():
    """Image b's mask has seed seed + ids[b], independent of the batch it is in; unbound: all share seed's mask;
    draw() gives fresh masks; a seed changes the mask."""
    proc = RandomMaskProcess(0.5, seed=7)
    x = torch.ones(3, 1, 16, 16)
    bound = proc.with_ids(torch.tensor([0, 1, 2]))
    m = bound.degrade(x, 1.0)
    assert torch.equal(m[0], proc.degrade(x[:1], 1.0)[0]) and not torch.equal(m[0], m[1])
    assert torch.equal(m[2], proc.with_ids(torch.tensor([2])).degrade(x[:1], 1.0)[0])
    assert torch.equal(proc.degrade(x, 1.0)[1], proc.degrade(x, 1.0)[0])
    drawn = proc.draw(3, torch.Generator().manual_seed(0)).degrade(x, 1.0)
    assert not torch.equal(drawn[0], drawn[1])
    assert not torch.equal(RandomMaskProcess(0.5, seed=8).degrade(x, 1.0), proc.degrade(x, 1.0))
    with pytest.raises(ValueError, match="mask ids"):
        bound.degrade(x[:2], 1.0)
    again = process_from_dict(proc.to_dict())  # the checkpoint records the seed: the same measurement operator
    assert torch.equal(again.degrade(x, 1.0), proc.degrade(x, 1.0))


def test_kernel_dilation_family(tmp_path):
    k = load_kernel("example")
    proc = KernelBlurProcess("example")
    s = torch.linspace(0, 1, 11, dtype=torch.float64)
    ks = proc.kernels(s, s)
    r = (k.shape[0] - 1) // 2
    d2 = torch.arange(-r, r + 1, dtype=torch.float64).pow(2)
    moment = (ks * (d2[None, :, None] + d2[None, None, :])).sum((1, 2))
    assert bool((ks >= 0).all()) and torch.allclose(ks.sum((1, 2)), torch.ones(11, dtype=torch.float64))
    assert ks[0, r, r] == 1.0 and torch.allclose(ks[-1], torch.as_tensor(k))
    assert bool((moment[1:] >= moment[:-1] - 1e-12).all()) and moment[-1] > moment[0]
    # a checkpoint keeps the kernel's values: rebuilt without the file, the same operator
    np.save(tmp_path / "k.npy", np.pad(np.ones((1, 5)), ((2, 2), (0, 0))))
    user = KernelBlurProcess(str(tmp_path / "k.npy"))
    (tmp_path / "k.npy").unlink()
    x = textured(1, 1, 16)
    assert torch.allclose(process_from_dict(user.to_dict()).degrade(x, 0.7), user.degrade(x, 0.7), atol=1e-12)


def test_kernel_files_and_their_errors(tmp_path):
    from PIL import Image

    arr = np.zeros((5, 5), dtype=np.uint8)
    arr[2, 1:4] = 255
    Image.fromarray(arr).save(tmp_path / "line.png")
    assert np.allclose(load_kernel(tmp_path / "line.png")[2, 1:4], 1 / 3)
    bad = {"even.npy": np.ones((4, 5)), "neg.npy": -np.ones((3, 3)), "cube.npy": np.ones((3, 3, 3))}
    for name, value in bad.items():
        np.save(tmp_path / name, value)
    Image.fromarray(np.zeros((3, 3, 3), dtype=np.uint8)).save(tmp_path / "rgb.png")
    (tmp_path / "junk.npy").write_text("not an array")
    for name in [*bad, "rgb.png", "junk.npy", "missing.npy"]:
        with pytest.raises(ValueError) as e:
            KernelBlurProcess(str(tmp_path / name))
        assert_one_line(str(e.value), f"degradation.kernel={tmp_path / name}", ".npy")
    with pytest.raises(ValueError, match="needs images larger"):
        KernelBlurProcess("example").degrade(torch.rand(1, 1, 4, 4), 1.0)


def test_unknown_kind_and_parameter_are_one_line_errors():
    with pytest.raises(ValueError) as e:
        build_process("superres")
    assert_one_line(str(e.value), "superres", "known kinds", "sr", "random_mask", "kernel", "box")
    with pytest.raises(ValueError) as e:
        process_from_dict({"kind": "nonexistent", "params": {}})
    assert_one_line(str(e.value), "nonexistent", "known kinds")
    with pytest.raises(ValueError) as e:
        build_process("sr", scale=4)
    assert_one_line(str(e.value), "'sr'", "scale", "scale_max")


def test_measurement_noise_rule():
    noise = GeometricNoiseSchedule(0.01, 0.05)
    assert check_measurement_noise(None, noise, "ck") is None and check_measurement_noise(0.02, noise, "ck") == 0.02
    for bad in (0.08, -0.01, "x"):
        with pytest.raises(ValueError) as e:
            check_measurement_noise(bad, noise, "runs/x/checkpoints/last")
        assert_one_line(str(e.value), "sampler.noise_sigma", "[0, 0.05]", "runs/x/checkpoints/last")
    y = torch.zeros(1, 1, 200, 200)
    std = float(top_up_noise(y + 0.02 * torch.randn(y.shape, generator=torch.Generator().manual_seed(0)), 0.02, 0.05,
                             torch.Generator().manual_seed(1)).std())  # fmt: skip
    assert abs(std - 0.05) < 0.002  # exactly N(A x, sigma(1)^2) after the top-up
    from dirac.evaluation.measurements import measure, top_up_measurements

    proc, x = BoxInpaintingProcess(6.0), torch.zeros(1, 1, 200, 200)
    y_user = x[0] + 0.01 * torch.randn(1, 200, 200, generator=torch.Generator().manual_seed(5))
    ys = top_up_measurements([y_user], proc, 0.01, seed=4)
    assert abs(float(ys[0].std()) - 0.05) < 0.002  # a user's measurement folder, topped up
    assert torch.allclose(ys[0] - y_user, top_up_measurements([x[0]], proc, 0.01, seed=4)[0], atol=1e-6)  # seeded
    assert abs(float(measure(proc, x, torch.Generator().manual_seed(0), 0.0).std()) - 0.05) < 0.002


@pytest.mark.parametrize("proc", NEW, ids=lambda p: p.kind)
def test_spectral_peers_and_tikhonov_on_the_new_processes(proc):
    """The exact SVD where the operator allows it (sr separable, masks diagonal), a clear refusal for a general
    2-D kernel; Tikhonov with λ tuned on one set beats the measurement on another."""
    x_val, x_test = textured(4, 1, 16, seed=1), textured(4, 1, 16, seed=2)
    if proc.kind == "kernel":
        with pytest.raises(ValueError, match="neither diagonal nor separable"):
            spectral_operator(proc, (1, 16, 16))
    else:
        spec = spectral_operator(proc, (1, 16, 16))
        assert torch.allclose(spec.forward(x_test.float()), proc.degrade(x_test.float(), 1.0), atol=1e-5)
    noise = torch.Generator().manual_seed(3)
    y_val, y_test = proc.measure(x_val, noise), proc.measure(x_test, noise)
    lams = (1e-3, 1e-2, 1e-1)
    val = [float(psnr(tikhonov(proc, y_val, lam, max_iter=200), x_val).mean()) for lam in lams]
    lam = lams[int(np.argmax(val))]
    assert float(psnr(tikhonov(proc, y_test, lam, max_iter=200), x_test).mean()) > float(psnr(y_test, x_test).mean())


def test_tiny_random_mask_training_and_sampling_end_to_end(tmp_path):
    """train -> checkpoint recording the process (kind, params with the mask seed) -> sample, with a measurement noise
    below sigma(1) accepted and one above refused naming the key, the trained range and the checkpoint."""
    import json

    from helpers import sample, tiny_training, train_tiny

    overrides = [a for a in tiny_training(experiment="random_mask_default") if not a.startswith("data.train.length")]
    ckpt = train_tiny(tmp_path / "train", [*overrides, "trainer.max_steps=2"])
    state = json.loads((ckpt / "state.json").read_text())
    assert state["process"]["kind"] == "random_mask" and state["process"]["params"]["seed"] == 0
    summary = sample(tmp_path, "s", f"checkpoint={ckpt}", "num_images=2", "sampler.steps=2", "sampler.t_stop=0.5",
                     "sampler.noise_sigma=0.02", "device=cpu", "save_images=false")  # fmt: skip
    assert all(np.isfinite(v["psnr"]) for v in summary["points"].values())
    with pytest.raises(ValueError) as e:
        sample(tmp_path, "bad", f"checkpoint={ckpt}", "num_images=2", "sampler.noise_sigma=0.2", "device=cpu")
    assert_one_line(str(e.value), "sampler.noise_sigma=0.2", "[0, 0.05]", str(ckpt))


def test_compare_skips_svd_peers_where_the_operator_has_no_exact_svd():
    """mode=compare/tune: Wiener, DDRM and DiffPIR are dropped with the reason for a general 2-D kernel, kept for
    the separable (sr) and diagonal (masks) processes; Tikhonov runs everywhere."""
    from dirac.evaluation.peers import setup_peers

    cfg = {"methods": ["wiener", "tikhonov"], "oracle": [], "prior": None, "regressor": None}
    for proc in NEW:
        peers = setup_peers(cfg, "my_checkpoint", proc, 1, "cpu")
        assert "tikhonov" in peers.methods
        if proc.kind == "kernel":
            assert "wiener" not in peers.methods and "neither diagonal nor separable" in peers.skipped["wiener"]
        else:
            assert "wiener" in peers.methods and not peers.skipped
