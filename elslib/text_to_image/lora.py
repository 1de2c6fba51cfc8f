r"""LoRA: fine-tune a trained network by adding a low-rank update to some of its weights.

Hu et al. (2021): keep a weight matrix W [out, in] frozen and learn only

    W' = W + (alpha / r) B A,   A [r, in], B [out, r],

with a small rank r. B starts at zero, so before any training the adapted network is exactly the
original; training moves r (in + out) numbers per adapted matrix instead of in x out. A
convolution's kernel [out, in, k, k] is the matrix [out, in k k] here, and A is itself a
convolution with r output channels followed by a 1 x 1 convolution B.

``add_lora(net, rank)`` wraps the linear and convolution layers of the latent denoiser (not its
frozen text encoder); ``fine_tune`` trains only the adapters; ``merge`` folds them into plain
weights (same function, no extra cost at sampling time).
"""

from __future__ import annotations

import copy
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..checks import check_number, check_positive_int, check_seed


class LoRALinear(nn.Module):
    """A frozen nn.Linear plus (alpha / r) B A."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float, gen: torch.Generator):
        super().__init__()
        self.base = base.requires_grad_(False)
        self.scale = alpha / rank
        self.A = nn.Parameter(torch.randn(rank, base.in_features, generator=gen) / base.in_features**0.5)
        self.B = nn.Parameter(torch.zeros(base.out_features, rank))

    def forward(self, x):
        return self.base(x) + self.scale * F.linear(F.linear(x, self.A), self.B)

    def merged(self) -> nn.Linear:
        out = copy.deepcopy(self.base)
        with torch.no_grad():
            out.weight += self.scale * self.B @ self.A
        return out.requires_grad_(True)


class LoRAConv2d(nn.Module):
    """A frozen nn.Conv2d plus (alpha / r) B A, A a convolution to r channels, B a 1 x 1 one."""

    def __init__(self, base: nn.Conv2d, rank: int, alpha: float, gen: torch.Generator):
        super().__init__()
        if base.groups != 1:
            raise ValueError("LoRA on grouped convolutions is not supported")
        self.base = base.requires_grad_(False)
        self.scale = alpha / rank
        fan_in = base.in_channels * base.kernel_size[0] * base.kernel_size[1]
        self.A = nn.Parameter(torch.randn(rank, base.in_channels, *base.kernel_size, generator=gen) / fan_in**0.5)
        self.B = nn.Parameter(torch.zeros(base.out_channels, rank, 1, 1))

    def forward(self, x):
        b = self.base
        low = F.conv2d(x, self.A, None, b.stride, b.padding, b.dilation)
        return b(x) + self.scale * F.conv2d(low, self.B)

    def merged(self) -> nn.Conv2d:
        out = copy.deepcopy(self.base)
        with torch.no_grad():  # B A as one kernel: [out, r] x [r, in k k]
            out.weight += self.scale * torch.einsum("or,rikl->oikl", self.B[:, :, 0, 0], self.A)
        return out.requires_grad_(True)


def _adaptable(module: nn.Module):
    """(parent, attribute name, layer) for every Linear / Conv2d outside the frozen text encoder."""
    for name, parent in module.named_modules():
        if name == "text" or name.startswith("text."):
            continue
        for child_name, child in parent.named_children():
            if type(child) in (nn.Linear, nn.Conv2d) and not (name == "" and child_name == "text"):
                yield parent, child_name, child


def add_lora(net: nn.Module, rank: int = 4, alpha: float | None = None, seed: int = 0) -> nn.Module:
    """A copy of `net` with LoRA adapters on its linear and convolution layers; only they train.

    Attention layers (``nn.MultiheadAttention``) keep their own projections frozen. alpha
    defaults to the rank (scale 1).
    """
    rank = check_positive_int(rank, "rank")
    alpha = float(rank) if alpha is None else check_number(alpha, "alpha", low=0.0, strict=True)
    gen = torch.Generator().manual_seed(check_seed(seed))
    adapted = copy.deepcopy(net).requires_grad_(False)
    for parent, name, layer in list(_adaptable(adapted)):
        wrapper = LoRALinear if isinstance(layer, nn.Linear) else LoRAConv2d
        setattr(parent, name, wrapper(layer, rank, alpha, gen))
    return adapted


def adapter_parameters(net: nn.Module) -> list[nn.Parameter]:
    """The trainable LoRA matrices A and B of an adapted network."""
    return [p for m in net.modules() if isinstance(m, (LoRALinear, LoRAConv2d)) for p in (m.A, m.B)]


def count(net: nn.Module) -> dict:
    """{"adapters": numbers LoRA trains, "full": numbers full fine-tuning would train (all but the text encoder)}."""
    lora = sum(p.numel() for p in adapter_parameters(net))
    full = sum(
        p.numel()
        for name, p in net.named_parameters()
        if not name.startswith("text.") and not name.endswith((".A", ".B"))
    )
    return {"adapters": lora, "full": full}


def merge(net: nn.Module) -> nn.Module:
    """A copy of an adapted network with every adapter folded into its layer's weights."""
    merged = copy.deepcopy(net)
    for parent in list(merged.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, (LoRALinear, LoRAConv2d)):
                setattr(parent, child_name, child.merged())
    return merged


def fine_tune(net, latents, ids, steps: int = 300, lr: float = 1e-2, seed: int = 0, progress: bool = True):
    """Train only the adapters of `net` (from ``add_lora``) on latents [N, 4, 8, 8] with caption ids.

    The denoising loss of ``latent.train`` (v target, cosine schedule, no prompt dropout: the
    new style is asked for by name). Returns (net, losses, seconds); the net is trained in place.
    """
    from .. import schedules

    params = adapter_parameters(net)
    if not params:
        raise ValueError("net has no LoRA adapters: make it with add_lora(net, rank) first")
    steps = check_positive_int(steps, "steps")
    gen = torch.Generator().manual_seed(check_seed(seed))
    opt = torch.optim.Adam(params, lr=check_number(lr, "lr", low=0.0, strict=True))
    cosine, losses, start = schedules.cosine(), [], time.perf_counter()
    iterator = range(steps)
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc="LoRA fine-tuning")
    net.train()
    for step in iterator:
        batch = torch.randint(len(latents), (min(64, len(latents)),), generator=gen)
        z = latents[batch]
        text = torch.stack([ids[i][int(torch.randint(len(ids[i]), (1,), generator=gen))] for i in batch.tolist()])
        t = torch.rand(len(batch), generator=gen)
        eps = torch.randn(z.shape, generator=gen)
        a, s = cosine.coefficients(t, like=z)
        loss = F.mse_loss(net(a * z + s * eps, t, label=text), a * eps - s * z)
        if not torch.isfinite(loss):
            raise ValueError(f"the loss became {loss.item()} at step {step + 1} (lr={lr!r} may be too large)")
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    net.eval()
    return net, losses, time.perf_counter() - start
