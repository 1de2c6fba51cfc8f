"""elslib.networks and elslib.training: symmetry, locality, the denoiser wrapper, checkpoints."""

import math

import pytest
import torch

from elslib import networks, schedules, training


def _net(kind="resnet", **kw):
    torch.manual_seed(0)
    return networks.build(kind, **kw).double().eval()


@pytest.mark.parametrize("shift", [(1, 0), (3, -5), (-7, 2)])
def test_circular_resnet_commutes_with_every_circular_shift(shift):
    net = _net(channels=8, blocks=3, padding="circular")
    x = torch.randn(2, 1, 12, 10, dtype=torch.float64)
    with torch.no_grad():
        a = net(torch.roll(x, shift, dims=(2, 3)), 0.4)
        b = torch.roll(net(x, 0.4), shift, dims=(2, 3))
    assert (a - b).abs().max() < 1e-10


def test_zero_padded_resnet_commutes_with_shifts_away_from_the_border():
    net = _net(channels=8, blocks=2, padding="zeros")  # receptive field 9: radius 4
    x = torch.randn(1, 1, 24, 24, dtype=torch.float64)
    dy, dx = 2, 3
    with torch.no_grad():
        out = net(x, 0.5)
        out_shifted = net(torch.roll(x, (dy, dx), dims=(2, 3)), 0.5)
    # pixels u whose 9x9 window stays inside the image, and clear of the wrapped strip at u + shift
    r = 4
    inner = out[..., r : 24 - r - dy, r : 24 - r - dx]
    assert (out_shifted[..., r + dy : 24 - r, r + dx : 24 - r] - inner).abs().max() < 1e-10
    # and at the border the symmetry really is broken (zero padding tells the net where the edge is)
    assert (torch.roll(out, (dy, dx), dims=(2, 3)) - out_shifted).abs().max() > 1e-3


@pytest.mark.parametrize("blocks", [1, 3, 6])
def test_resnet_receptive_field_measured_by_gradients(blocks):
    net = _net(channels=16, blocks=blocks)
    size = 2 * blocks + 5 + 8
    x = torch.randn(1, 1, size, size, dtype=torch.float64, requires_grad=True)
    centre = size // 2
    net(x, 0.5)[0, 0, centre, centre].backward()
    support = x.grad[0, 0].abs() > 0
    rows = support.any(dim=1).nonzero().flatten()
    cols = support.any(dim=0).nonzero().flatten()
    width = int(rows.max() - rows.min() + 1)
    assert width == int(cols.max() - cols.min() + 1) == net.receptive_field == 2 * blocks + 5


def test_paper_resnet_has_receptive_field_17():
    assert networks.ResNet(blocks=6).receptive_field == 17


def test_circular_unet_commutes_with_shifts_by_its_downsampling_factor():
    net = _net("unet", channels=8, padding="circular", attention=True)
    x = torch.randn(2, 1, 16, 16, dtype=torch.float64)
    with torch.no_grad():
        out = net(x, 0.3)
        for shift in [(4, 0), (8, -4), (-12, 4)]:
            diff = net(torch.roll(x, shift, dims=(2, 3)), 0.3) - torch.roll(out, shift, dims=(2, 3))
            assert diff.abs().max() < 1e-10
        # a shift by one pixel is not a symmetry of 2x2 pooling (exact symmetries give ~1e-15)
        diff = net(torch.roll(x, (1, 0), dims=(2, 3)), 0.3) - torch.roll(out, (1, 0), dims=(2, 3))
        assert diff.abs().max() > 1e-8


def test_unet_refuses_sizes_it_cannot_halve_twice():
    with pytest.raises(ValueError, match="divisible by 4"):
        _net("unet", channels=4)(torch.zeros(1, 1, 10, 12, dtype=torch.float64), 0.5)


def test_class_conditioning_changes_the_output_and_checks_labels():
    net = _net(channels=8, blocks=2, num_classes=3)
    x = torch.randn(2, 1, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        assert not torch.allclose(net(x, 0.5, label=0), net(x, 0.5, label=2))
        assert torch.allclose(net(x, 0.5), net(x, 0.5, label=torch.tensor([-1, -1])))
    with pytest.raises(ValueError, match="label"):
        net(x, 0.5, label=3)
    with pytest.raises(ValueError, match="num_classes"):
        _net(channels=8, blocks=2)(x, 0.5, label=1)


class _KnowsTheNoise(torch.nn.Module):
    """A fake network that returns the true noise of a known (x0, eps) pair."""

    target = "eps"

    def __init__(self, x0, eps, schedule):
        super().__init__()
        self.x0, self.eps, self.schedule = x0, eps, schedule
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x, t, label=None):
        return self.eps


@pytest.mark.parametrize("t", [0.05, 0.5, 0.95])
def test_as_denoiser_inverts_the_forward_process(t):
    sched = schedules.cosine()
    x0, eps = torch.randn(2, 1, 5, 5), torch.randn(2, 1, 5, 5)
    den = networks.as_denoiser(_KnowsTheNoise(x0, eps, sched), sched)
    assert torch.allclose(den(sched.add_noise(x0, t, eps), t), x0, atol=1e-3 if t > 0.9 else 1e-5)


class _KnowsVelocity(torch.nn.Module):
    """A fake v-network that outputs the true velocity v = a eps - s x0 of the batch it was built with."""

    target = "v"

    def __init__(self, x0, eps, sched, t):
        super().__init__()
        self.v = sched.alpha(t) * eps - sched.sigma(t) * x0
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x, t, label=None):
        return self.v


@pytest.mark.parametrize("t", [0.05, 0.5, 0.95, 1.0])
def test_a_v_network_gives_back_x0_and_eps_even_at_t_1(t):
    sched = schedules.cosine()
    x0, eps = torch.randn(2, 1, 5, 5, dtype=torch.float64), torch.randn(2, 1, 5, 5, dtype=torch.float64)
    den = networks.as_denoiser(_KnowsVelocity(x0, eps, sched, t), sched)
    eps_hat, x0_hat = den.predict(sched.add_noise(x0, t, eps), t)
    assert torch.allclose(x0_hat, x0, atol=1e-10) and torch.allclose(eps_hat, eps, atol=1e-10)


def test_a_v_error_stays_bounded_in_x0_where_an_eps_error_explodes():
    sched, t = schedules.cosine(), 1.0
    x_t, err = torch.zeros(1, 1, 2, 2), 0.01 * torch.ones(1, 1, 2, 2)
    a, s = sched.alpha(t), sched.sigma(t)
    _, x0_from_eps = networks.split_output(err, x_t, a, s, "eps")  # true eps = 0, true x0 = 0
    _, x0_from_v = networks.split_output(err, x_t, a, s, "v")
    assert x0_from_eps.abs().max() > 0.5 and x0_from_v.abs().max() <= 0.01


@pytest.mark.parametrize("kind", ["resnet", "unet"])
def test_the_training_loss_regresses_on_the_networks_target(kind):
    sched = schedules.cosine()
    torch.manual_seed(0)
    net = networks.build(kind, channels=4, **({"blocks": 1} if kind == "resnet" else {}), target="v")
    x0 = torch.rand(3, 1, 8, 8) * 2 - 1
    loss = training.diffusion_loss(net, x0, sched, torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)  # redraw what the loss drew, in the same order
    t = torch.rand(3, generator=g)
    eps = torch.randn(x0.shape, generator=g)
    a, s = sched.alpha(t).view(-1, 1, 1, 1), sched.sigma(t).view(-1, 1, 1, 1)
    with torch.no_grad():
        expected = ((net(a * x0 + s * eps, t) - (a * eps - s * x0)) ** 2).mean()
    assert torch.allclose(loss.detach(), expected, atol=1e-6)
    with pytest.raises(ValueError, match="target"):
        networks.ResNet(target="x0")


def test_bad_arguments():
    with pytest.raises(ValueError, match="padding"):
        networks.ResNet(padding="reflect")
    with pytest.raises(ValueError, match="t"):
        _net(channels=4, blocks=1)(torch.zeros(1, 1, 4, 4, dtype=torch.float64), 1.5)
    with pytest.raises(ValueError, match="kind"):
        networks.build("transformer")


# --- training ---------------------------------------------------------------------------------


def _tiny_data():
    g = torch.Generator().manual_seed(0)
    return torch.rand(32, 1, 8, 8, generator=g) * 2 - 1, torch.randint(0, 2, (32,), generator=g)


def test_a_short_training_run_lowers_the_loss():
    images, _ = _tiny_data()
    torch.manual_seed(0)
    net = networks.ResNet(channels=16, blocks=2)
    hist = training.train(net, images, steps=150, batch_size=32, lr=3e-3, progress=False)
    assert hist.steps == 150
    assert sum(hist.losses[-20:]) / 20 < 0.8 * sum(hist.losses[:20]) / 20


def test_checkpoint_round_trip_and_resume(tmp_path, monkeypatch):
    images, labels = _tiny_data()
    torch.manual_seed(0)
    full = networks.ResNet(channels=8, blocks=1, num_classes=2)
    ref = training.train(full, images, labels, steps=6, batch_size=8, progress=False)

    torch.manual_seed(0)
    net = networks.ResNet(channels=8, blocks=1, num_classes=2)
    ckpt = tmp_path / "run.pt"
    real_save = training.save_checkpoint

    def save_then_die(*args, **kwargs):  # the run is killed right after its first checkpoint
        real_save(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        training.train(net, images, labels, steps=6, batch_size=8, progress=False, checkpoint=ckpt, save_every=3)
    monkeypatch.setattr(training, "save_checkpoint", real_save)
    assert len(training.read_checkpoint(ckpt)["losses"]) == 3
    torch.manual_seed(123)  # resume must not depend on the global seed
    net2 = networks.ResNet(channels=8, blocks=1, num_classes=2)
    resumed = training.train(net2, images, labels, steps=6, batch_size=8, progress=False, checkpoint=ckpt, resume=True)
    assert resumed.losses == pytest.approx(ref.losses, rel=1e-6)

    for (k, v), (k2, v2) in zip(full.state_dict().items(), net2.state_dict().items(), strict=True):
        assert k == k2 and torch.allclose(v.float(), v2.float(), atol=1e-6), k  # the same weight average
    loaded, state = training.load_checkpoint(ckpt)
    assert state["kind"] == "resnet" and len(state["losses"]) == 6
    for (k, v), (k2, v2) in zip(net2.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(v, v2)


def test_the_weight_average_is_bias_corrected_and_forgets_the_initialisation(monkeypatch):
    """The EMA left in the net is sum_k (1-d) d^(n-k) w_k / (1 - d^n) over the weights w_1..w_n after
    each step, computed here in float64 from snapshots: no trace of the random initial weights."""
    images, _ = _tiny_data()
    snapshots = []

    class Recording(training.WeightAverage):
        def update(self, net):
            snapshots.append({k: v.detach().double().clone() for k, v in net.state_dict().items()})
            super().update(net)

    monkeypatch.setattr(training, "WeightAverage", Recording)
    torch.manual_seed(0)
    net = networks.ResNet(channels=8, blocks=1)
    init = {k: v.detach().double().clone() for k, v in net.state_dict().items()}
    decay = 0.99
    training.train(net, images, steps=5, batch_size=8, lr=5e-2, ema_decay=decay, progress=False)
    n = len(snapshots)
    assert n == 5
    weights = [(1 - decay) * decay ** (n - 1 - i) for i in range(n)]
    assert sum(weights) == pytest.approx(1 - decay**n)
    for k, v in net.state_dict().items():
        if not v.is_floating_point():
            continue
        expected = sum(w * snap[k] for w, snap in zip(weights, snapshots, strict=True)) / (1 - decay**n)
        assert torch.allclose(v.double(), expected, atol=1e-6), k
        # the uncorrected average started from the init would sit mostly (d^5 = 95%) on the init
        if k.endswith("weight") and v.numel() > 10:
            assert (v.double() - expected).abs().max() < 0.01 * (init[k] - expected).abs().max()


def test_a_bad_ema_decay_is_refused():
    with pytest.raises(ValueError, match="ema_decay"):
        training.WeightAverage(networks.ResNet(channels=8, blocks=1), 1.5)


def test_tampered_or_wrong_checkpoints_are_refused(tmp_path):
    net = networks.ResNet(channels=8, blocks=1)
    good = training.save_checkpoint(tmp_path / "good.pt", net)

    state = torch.load(good, weights_only=True)
    state["config"]["channels"] = 16  # the weights no longer fit the architecture
    torch.save(state, tmp_path / "wrong.pt")
    with pytest.raises(ValueError, match="does not fit"):
        training.load_checkpoint(tmp_path / "wrong.pt")

    class Sneaky:
        def __reduce__(self):
            return (print, ("this must never run",))

    torch.save({"format": "elslib-checkpoint-1", "payload": Sneaky()}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="could not be read safely"):
        training.load_checkpoint(tmp_path / "evil.pt")

    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pt"):
        training.load_checkpoint(tmp_path / "junk.pt")
    torch.save({"weights": {}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not an elslib checkpoint"):
        training.load_checkpoint(tmp_path / "other.pt")


def test_metadata_of_any_type_is_stored_as_plain_values(tmp_path):
    net = networks.ResNet(channels=4, blocks=1)
    path = training.save_checkpoint(tmp_path / "m.pt", net, meta={"torch": torch.__version__, "n": 3})
    _, state = training.load_checkpoint(path)
    assert state["meta"] == {"torch": str(torch.__version__), "n": 3}


def test_the_learning_rate_warms_up_then_follows_one_cosine(monkeypatch):
    steps, warmup, lr = 10, 4, 0.02
    expected = [lr * (k + 1) / warmup for k in range(warmup)]
    expected += [lr * 0.5 * (1 + math.cos(math.pi * k / (steps - warmup))) for k in range(steps - warmup)]
    assert [training.learning_rate(k, lr, steps, warmup) for k in range(steps)] == pytest.approx(expected)
    # and the optimiser really runs at those rates
    seen = []
    real_step = torch.optim.Adam.step

    def record(self, *args, **kwargs):
        seen.append(self.param_groups[0]["lr"])
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", record)
    images, _ = _tiny_data()
    training.train(
        networks.ResNet(channels=4, blocks=1), images, steps=steps, batch_size=4, lr=lr, warmup=warmup, progress=False
    )
    assert seen == pytest.approx(expected)
    with pytest.raises(ValueError, match="warmup must be smaller"):
        training.train(networks.ResNet(channels=4, blocks=1), images, steps=3, warmup=3, progress=False)


def test_training_stops_at_the_first_non_finite_loss(tmp_path):
    images, _ = _tiny_data()
    ckpt = tmp_path / "run.pt"
    with pytest.raises(ValueError, match=r"loss became (nan|inf) at step \d+"):
        training.train(
            networks.ResNet(channels=4, blocks=1),
            images,
            steps=200,
            batch_size=4,
            lr=1e6,
            checkpoint=ckpt,
            save_every=1000,
            progress=False,
        )
    assert not ckpt.exists()  # nothing trained on NaN was saved


def test_records_are_kept_along_the_way(tmp_path):
    images, _ = _tiny_data()
    ckpt = tmp_path / "run.pt"
    torch.manual_seed(0)
    net = networks.ResNet(channels=4, blocks=1)
    training.train(net, images, steps=6, batch_size=4, checkpoint=ckpt, keep_at=(2, 5), progress=False)
    assert sorted(p.name for p in tmp_path.glob("run-step*.pt")) == ["run-step2.pt", "run-step5.pt"]
    five, state = training.load_checkpoint(tmp_path / "run-step5.pt")
    assert len(state["losses"]) == 5 and state["meta"]["step"] == 5 and "optimizer" not in state
    six, _ = training.load_checkpoint(ckpt)
    assert not torch.equal(next(five.parameters()), next(six.parameters()))  # a snapshot, not the end
    with pytest.raises(ValueError, match="keep_at needs a checkpoint"):
        training.train(networks.ResNet(channels=4, blocks=1), images, steps=3, keep_at=(1,), progress=False)


def test_bottleneck_attention_is_the_softmax_of_the_layers_own_queries_and_keys():
    net = _net("unet", channels=8, attention=True)
    x = torch.randn(2, 1, 16, 12, dtype=torch.float64)
    seq, weights = networks.bottleneck_attention(net, x, 0.3)
    heads, c = net.attention.attn.num_heads, 16  # the bottleneck holds 2 * channels
    assert seq.shape == (2, 4 * 3, c) and weights.shape == (2, heads, 12, 12)
    # from the definition: q = W_q h + b_q, k = W_k h + b_k per head, softmax(q k^T / sqrt(d)) over keys
    w_in, b_in = net.attention.attn.in_proj_weight.detach(), net.attention.attn.in_proj_bias.detach()
    q = (seq @ w_in[:c].T + b_in[:c]).view(2, 12, heads, c // heads).transpose(1, 2)
    k = (seq @ w_in[c : 2 * c].T + b_in[c : 2 * c]).view(2, 12, heads, c // heads).transpose(1, 2)
    scores = q @ k.transpose(-1, -2) / math.sqrt(c // heads)
    by_hand = scores.exp() / scores.exp().sum(-1, keepdim=True)
    assert torch.allclose(weights, by_hand, atol=1e-12)
    # and the sequence is the bottleneck, row by row: the first three levels of the UNet, run by hand
    with torch.no_grad():
        h0 = networks._input(net, x, net.first[0])
        emb = net.cond(networks._times(h0, 0.3), networks._labels(h0, None, net.num_classes))
        h = net._level(0, h0, emb)
        for level in (1, 2):
            h = net._level(level, torch.nn.functional.avg_pool2d(h, 2), emb)
    assert torch.allclose(seq, h.flatten(2).transpose(1, 2), atol=1e-12)


def test_bottleneck_attention_needs_an_attention_unet():
    with pytest.raises(ValueError, match="net must be a UNet built with attention=True, got UNet"):
        networks.bottleneck_attention(_net("unet", channels=8), torch.zeros(1, 1, 8, 8), 0.5)
    wrapped = networks.as_denoiser(_net("unet", channels=8, attention=True))
    with pytest.raises(ValueError, match=r"pass the network itself \(its \.net\)"):
        networks.bottleneck_attention(wrapped, torch.zeros(1, 1, 8, 8), 0.5)
