"""Bad input to the rest of the public API: a clear error naming the argument, never a silently wrong result."""

import math

import pytest
import torch

from elslib import data, metrics, morphogenesis, pretrained, sampling, schedules


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: schedules.cosine(offset=math.inf), "offset must be a finite number"),
        (lambda: schedules.cosine(offset=math.nan), "offset must be a finite number"),
        (lambda: schedules.cosine(offset="0.008"), "offset must be a finite number"),
        (lambda: schedules.linear(beta_max=math.inf), "beta_max=inf"),
        (lambda: schedules.linear(beta_min=math.nan), "beta_min=nan"),
        (lambda: schedules.linear(beta_min=2.0, beta_max=1.0), "beta_min <= beta_max"),
        (lambda: sampling.step_times(10**9), "steps must be at most"),
        (lambda: sampling.ddim(lambda x, t: x, torch.zeros(1, 1, 4, 4), steps=10**9, progress=False), "at most"),
        (lambda: metrics.nearest_neighbours(torch.zeros(2, 1, 4, 4), torch.zeros(3, 1, 4, 4), chunk=-1), "chunk"),
        (lambda: metrics.nearest_neighbours(torch.zeros(2, 1, 4, 4), torch.zeros(0, 1, 4, 4)), "train must hold"),
        (lambda: metrics.effective_number(torch.tensor([-0.5, 1.5])), "weights must be finite and >= 0"),
        (lambda: metrics.effective_number(torch.tensor([math.nan, 1.0])), "weights must be finite and >= 0"),
        (lambda: data.load("digits", seed=None), "seed must be an integer"),
        (lambda: pretrained.train("resnet-zeros", steps=0), "steps must be an integer >= 1"),
        (lambda: morphogenesis.simulate(feed=1e6, kill=0.06, size=16, steps=200, n_frames=1), "diverged"),
    ],
)
def test_a_clear_error_names_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_a_denoiser_that_returns_nan_or_inf_is_named_with_its_step(bad):
    def broken(x, t):
        return x * bad if t < 0.6 else x  # fine at first, broken from t = 0.5 on

    for sampler in (sampling.ddim, sampling.ddpm):
        with pytest.raises(ValueError, match=r"step \d+ of 4 \(t = 0\.5\)"):
            sampler(broken, torch.ones(1, 1, 4, 4), steps=4, progress=False)


def test_valid_edges_still_work():
    assert schedules.cosine(offset=0).alpha_bar(1.0) == pytest.approx(0.0, abs=1e-12)
    assert len(sampling.step_times(sampling.MAX_STEPS)) == sampling.MAX_STEPS + 1
    w = torch.tensor([[0.0, 1.0], [0.5, 0.5]])
    assert metrics.effective_number(w).tolist() == pytest.approx([1.0, 2.0])
    d, i = metrics.nearest_neighbours(torch.zeros(2, 1, 4, 4), torch.ones(3, 1, 4, 4), chunk=1)
    assert d.tolist() == [1.0, 1.0] and i.tolist() == [0, 0]
