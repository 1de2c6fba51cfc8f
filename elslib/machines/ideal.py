r"""The ideal score machine (IS): the optimal denoiser of the training set itself.

If the data distribution *is* the N training images, the best estimate of x0 given x_t is

    x0_hat = sum_n w_n y_n,   w = softmax_n( -|x_t - a y_n|^2 / (2 s^2) ),

a posterior-weighted average of whole training images. As t -> 0 the weights collapse on the
nearest training image, so sampling with it can only return training images: it memorises.
"""

from __future__ import annotations

import torch

from .base import Machine
from .softmax import OnlineSoftmax


class IdealDenoiser(Machine):
    """Ideal (memorising) denoiser over whole training images.

    ``IdealDenoiser(images, schedule=None, labels=None, device=None, chunk_size=2**21)``;
    call ``den(x_t, t, label=None)`` with x_t [B, C, H, W] and t a float or a [B] tensor.
    Every pixel shares one set of weights (one per training image).
    """

    def _denoise(self, x, a, s2, patch_size, label):
        sm, _ = self._softmax(x, a, s2, label, explain=False)
        return sm.result().view_as(x)

    def _explain(self, x, a, s2, patch_size, label):
        sm, members = self._softmax(x, a, s2, label, explain=True)
        b, (h, w) = x.shape[0], self.size
        winner = sm.arg[:, 0]
        if members is not None:
            winner = members[winner]
        return {
            "image": winner.view(b, 1, 1),
            "row": torch.arange(h, device=self.device).view(1, h, 1),
            "col": torch.arange(w, device=self.device).view(1, 1, w),
            "weight": sm.winner_weight().view(b, 1, 1),
            "n_eff": sm.n_eff().view(b, 1, 1),
        }

    def _softmax(self, x, a, s2, label, explain):
        """Stream the training images through an online softmax: scores [B, N] by chunks of N."""
        members = self._candidates(label)
        train = (self.images if members is None else self.images[members]).flatten(1)  # [N, D]
        q = x.flatten(1)  # [B, D]
        step = max(1, self.chunk_size // (q.shape[0] * q.shape[1]))
        a32, temp = a.float()[:, None, None], (2.0 * s2).float()[:, None]
        sm = OnlineSoftmax(explain)
        for n0 in range(0, train.shape[0], step):
            y = train[n0 : n0 + step]
            # Direct differences (not the expanded |q|^2 - 2 a q.y + ...): no cancellation.
            scores = -(q[:, None, :] - a32 * y[None]).square_().sum(2) / temp  # [B, n]
            if explain:
                sm.add(scores.double(), None)
            else:
                sm.add(scores, lambda p, y=y: p @ y)
        return sm, members
