r"""The local score machine (LS): locality alone, no equivariance.

Constrain the denoiser so that output pixel u sees only the P x P patch of x_t around u. The
optimal such denoiser weighs each training image n by how well *its* patch at the same place u
matches:

    x0_hat[u] = sum_n w_n(u) y_n[u],   w(u) = softmax_n( -|patch_u(x_t) - a patch_u(y_n)|^2 / (2 s^2) ),

patches zero padded at the border. Different pixels may pick different training images: a
mosaic, but each piece still sits where it sat in its training image.

The squared patch distance is a box filter of the per-pixel squared difference, so the machine
needs no patch extraction: (x_t - a y_n)^2 summed over channels, zero padded, box-summed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import PatchMachine
from .patches import pad, windows
from .softmax import OnlineSoftmax


class LocalDenoiser(PatchMachine):
    """Local (patch-at-the-same-place) denoiser.

    ``LocalDenoiser(images, patch_size=7, schedule=None, labels=None, device=None, chunk_size=2**21)``;
    patch_size: odd int from 1 to 2 max(H, W) - 1, or a callable t -> odd int. Patches are zero
    padded with the value 0 (mid-grey in [-1, 1], not the background -1), like a conv layer.
    With P = 2 max(H, W) - 1 every window covers the whole image and LS equals the ideal machine.
    """

    def _denoise(self, x, a, s2, patch_size, label):
        return local_softmax(self._train(label), x, a, s2, patch_size, self.chunk_size).result()

    def _explain(self, x, a, s2, patch_size, label):
        return local_explain(self._train(label), self._candidates(label), x, a, s2, patch_size, self.chunk_size)

    def _train(self, label):
        members = self._candidates(label)
        return self.images if members is None else self.images[members]


def box_sum(v: torch.Tensor, p: int) -> torch.Tensor:
    """Sum over the zero-padded P x P window around each pixel: [..., H, W] -> [..., H, W]."""
    if p == 1:
        return v
    r, shape = p // 2, v.shape
    flat = F.pad(v.reshape(-1, 1, *shape[-2:]), (r, r, r, r))
    # Separable: columns then rows, O(P) per pixel. avg_pool sums then divides; multiply back.
    flat = F.avg_pool2d(flat, (p, 1), stride=1)
    flat = F.avg_pool2d(flat, (1, p), stride=1)
    return (flat * (p * p)).reshape(shape)


def local_softmax(train, x, a, s2, p: int, chunk_size: int, explain: bool = False) -> OnlineSoftmax:
    """Online softmax over training images, independently at every pixel.

    train: [N, C, H, W]; x: [B, C, H, W]; a, s2: [B] float64. Scores are [B, n, H, W] per
    chunk of n training images; the result is [B, C, H, W].
    """
    b, c, h, w = x.shape
    r = p // 2
    per_image = b * max(c * h * w, (h + 2 * r) * (w + 2 * r))
    step = max(1, chunk_size // per_image)
    a32, temp = a.float().view(b, 1, 1, 1, 1), (2.0 * s2).float().view(b, 1, 1, 1)
    sm = OnlineSoftmax(explain)
    for n0 in range(0, train.shape[0], step):
        y = train[n0 : n0 + step]
        d2 = (x[:, None] - a32 * y[None]).square_().sum(2)  # [B, n, H, W], direct: no cancellation
        scores = -box_sum(d2, p) / temp
        if explain:
            sm.add(scores.double(), None)
        else:
            sm.add(scores, lambda q, y=y: torch.einsum("bnhw,nchw->bchw", q, y))
    return sm


def local_explain(train, members, x, a, s2, p: int, chunk_size: int) -> dict:
    """Explanation fields [B, H, W] of the local machine (the winner sits at the pixel itself)."""
    sm = local_softmax(train, x, a, s2, p, chunk_size, explain=True)
    b, _, h, w = x.shape
    winner = sm.arg[:, 0]
    if members is not None:
        winner = members[winner]
    return {
        "image": winner,
        "row": torch.arange(h, device=x.device).view(1, h, 1),
        "col": torch.arange(w, device=x.device).view(1, 1, w),
        "weight": sm.winner_weight()[:, 0],
        "n_eff": sm.n_eff()[:, 0],
    }


def local_softmax_at(train_patches, train_values, x, a, s2, p: int, pixels, chunk_size: int, explain: bool = False):
    """The local machine at a few pixels only, from their patches (cheaper than whole images).

    train_patches: [N, S, D] zero-padded training patches at the S pixels (flat indices
    `pixels`), train_values: [N, C, S] their centre values; x: [B, C, H, W]. Scores are
    [B, n, S] per chunk of n training images; the result is [B, C, S].
    """
    b, c, h, w = x.shape
    n, s, d = train_patches.shape
    q = windows(pad(x, p // 2, "zeros"), p)[:, :, pixels // w, pixels % w]  # [B, C, S, P, P]
    q = q.permute(0, 2, 1, 3, 4).reshape(b, 1, s, d)
    step = max(1, chunk_size // (b * s * d))
    a32, temp = a.float().view(b, 1, 1, 1), (2.0 * s2).float().view(b, 1, 1)
    sm = OnlineSoftmax(explain)
    for n0 in range(0, n, step):
        k, v = train_patches[n0 : n0 + step], train_values[n0 : n0 + step]
        scores = -(q - a32 * k[None]).square_().sum(3) / temp  # [B, n, S]
        if explain:
            sm.add(scores.double(), None)
        else:
            sm.add(scores, lambda pw, v=v: torch.einsum("bns,ncs->bcs", pw, v))
    return sm
