"""LoRA adapters: exact at the start, the parameter count r (in + out), merging, training only them."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from elslib.text_to_image import Tokenizer, clip, latent, lora

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    tok = Tokenizer(["a", "seven", "thick"])
    base = latent.LatentDenoiser(clip.TextEncoder(len(tok), width=32), channels=16, blocks=2)
    with torch.no_grad():
        for p in base.parameters():  # a network whose output depends on everything
            p.add_(0.02 * torch.randn(p.shape))
    return base, tok


def test_adapters_start_at_zero_and_count_r_in_plus_out(net):
    base, tok = net
    adapted = lora.add_lora(base, rank=2)
    x, ids = torch.randn(3, 4, 8, 8), tok.encode(["a seven", "a thick seven", "seven"])
    # B = 0: the same function (up to attention's frozen fast path, which rounds differently)
    torch.testing.assert_close(adapted(x, 0.4, label=ids), base(x, 0.4, label=ids), rtol=0, atol=1e-6)
    expected = 0
    for name, m in base.named_modules():
        if name.startswith("text"):
            continue
        if type(m) is nn.Linear:
            expected += 2 * (m.in_features + m.out_features)
        elif type(m) is nn.Conv2d:
            expected += 2 * (m.in_channels * m.kernel_size[0] * m.kernel_size[1] + m.out_channels)
    counts = lora.count(adapted)
    assert counts["adapters"] == expected
    full = sum(p.numel() for n, p in base.named_parameters() if not n.startswith("text."))
    assert counts["full"] == full and counts["adapters"] < 0.25 * full
    assert {id(p) for p in adapted.parameters() if p.requires_grad} == {id(p) for p in lora.adapter_parameters(adapted)}


def test_merging_gives_the_same_function(net):
    base, tok = net
    adapted = lora.add_lora(base, rank=3, alpha=6.0, seed=2)
    with torch.no_grad():
        for p in lora.adapter_parameters(adapted):
            p.normal_(0.0, 0.05)
    x, ids = torch.randn(2, 4, 8, 8), tok.encode(["a seven", "thick"])
    out = adapted(x, 0.7, label=ids)
    assert (out - base(x, 0.7, label=ids)).abs().max() > 1e-3
    merged = lora.merge(adapted)
    assert not any(isinstance(m, (lora.LoRALinear, lora.LoRAConv2d)) for m in merged.modules())
    torch.testing.assert_close(merged(x, 0.7, label=ids), out, atol=1e-5, rtol=1e-5)


def test_fine_tuning_moves_only_the_adapters(net):
    base, tok = net
    adapted = lora.add_lora(base, rank=2)
    frozen = {n: p.clone() for n, p in adapted.named_parameters() if not n.endswith((".A", ".B"))}
    latents = torch.randn(6, 4, 8, 8)
    ids = [tok.encode(["a thick seven"])] * 6
    _, losses, _ = lora.fine_tune(adapted, latents, ids, steps=25, lr=1e-2, progress=False)
    assert losses[-1] < losses[0]
    for n, p in adapted.named_parameters():
        if n in frozen:
            assert torch.equal(p, frozen[n]), n
    assert all(m.B.abs().sum() > 0 for m in adapted.modules() if isinstance(m, (lora.LoRALinear, lora.LoRAConv2d)))
    with pytest.raises(ValueError, match="no LoRA adapters"):
        lora.fine_tune(base, latents, ids, steps=1, progress=False)
    with pytest.raises(ValueError, match="rank must be an integer >= 1"):
        lora.add_lora(base, rank=0)
