import json

import torch

from dirac.degradations import GaussianBlurProcess, SeveritySchedule, SmoothInpaintingProcess
from dirac.scheduling import greedy_schedule, greedy_severity_indices, mse_distance
from tests.conftest import smooth_images


def test_max_adjacent_distance_never_increases():
    x = smooth_images(8, 3, 32)
    for proc in (GaussianBlurProcess(0.3, 2.0), SmoothInpaintingProcess(0.0, 6.0)):
        cand = torch.linspace(proc.schedule.s_min, proc.schedule.s_max, 120)
        picked, history = greedy_severity_indices(proc, x, cand, num_steps=15)
        assert len(picked) == 16 and picked[0] == 0 and picked[-1] == 119
        assert all(b > a for a, b in zip(picked, picked[1:], strict=False))
        assert all(h1 <= h0 + 1e-12 for h0, h1 in zip(history, history[1:], strict=False))
        assert history[-1] < history[0] / 4


def test_greedy_schedule_is_monotone_and_balances_gaps():
    # detailed (white-noise) images: small blurs change them most, a linear schedule front-loads the gap
    x = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    proc = GaussianBlurProcess(0.3, 2.0)
    sched = greedy_schedule(proc, x, num_steps=8, num_candidates=200)
    t = torch.linspace(0, 1, 101)
    s = sched(t)
    assert (s[1:] >= s[:-1]).all()
    assert abs(s[0].item() - proc.schedule.s_min) < 1e-6 and abs(s[-1].item() - 2.0) < 1e-6

    # compared with the linear schedule, the greedy one has a smaller largest neighbour gap
    def max_gap(schedule):
        sev = schedule(torch.linspace(0, 1, 9))
        ys = [proc.apply(x, v.expand(8)) for v in sev]
        return max(mse_distance(a, b).mean().item() for a, b in zip(ys, ys[1:], strict=False))

    assert max_gap(sched) < max_gap(proc.schedule)
    # blur: severity rises steeply near t=0 (small blurs change images most)
    assert sched(torch.tensor([0.5])).item() < 0.3 + 0.5 * (2.0 - 0.3)


def test_schedule_json_round_trip_and_process_uses_it():
    x = smooth_images(4, 3, 16)
    proc = GaussianBlurProcess(0.3, 2.0)
    sched = greedy_schedule(proc, x, num_steps=6, num_candidates=50)
    back = SeveritySchedule.from_dict(json.loads(json.dumps(sched.to_dict())))
    assert back == sched and back.kind == "greedy"
    t = torch.rand(7)
    assert torch.equal(back(t), sched(t))
    greedy_proc = proc.with_schedule(back)
    assert torch.allclose(greedy_proc.severity(t, 7), sched(t))
    assert proc.schedule.kind == "linear"  # the original is unchanged
