r"""The equivariant score machine (ES): equivariance alone, no locality.

Constrain the denoiser to commute with circular shifts. Its optimum treats every circular shift
S_d y_n of every training image as a training image of its own:

    x0_hat[u] = sum_{n, d} w_{n,d} y_n[u - d],   w = softmax_{n,d}( -|x_t - a S_d y_n|^2 / (2 s^2) ).

That is N * H * W candidates of H * W pixels each -- never built. A shift does not change a
norm, so the score needs only the cross-correlation corr_n[d] = sum_u x_t[u] y_n[u - d], for
all shifts d at once by FFT; and the output is a circular convolution of each weight map w_n
with its image, again by FFT. Both in float64: FFT round-off grows with the image's energy, and
small-t scores divide it by s^2.
"""

from __future__ import annotations

import torch

from .base import Machine
from .softmax import OnlineSoftmax


class EquivariantDenoiser(Machine):
    """Shift-equivariant denoiser (all circular shifts of all training images).

    ``EquivariantDenoiser(images, schedule=None, labels=None, device=None, chunk_size=2**21)``;
    call ``den(x_t, t, label=None)``. Weights are global (one per image and shift).
    """

    def __init__(self, images, **kwargs):
        super().__init__(images, **kwargs)
        self._spectra = None  # rfft2 of the training set, float64, built on first use

    def _denoise(self, x, a, s2, patch_size, label):
        sm = self._softmax(x, a, s2, label, explain=False)
        b, c, (h, w) = x.shape[0], self.channels, self.size
        spectrum = sm.result().view(b, c, h, w // 2 + 1)
        return torch.fft.irfft2(spectrum, s=(h, w)).float()

    def _explain(self, x, a, s2, patch_size, label):
        sm = self._softmax(x, a, s2, label, explain=True)
        b, (h, w) = x.shape[0], self.size
        flat = sm.arg[:, 0]  # index into (image, shift row, shift col)
        n, di, dj = flat // (h * w), (flat // w) % h, flat % w
        members = self._candidates(label)
        if members is not None:
            n = members[n]
        rows = torch.arange(h, device=x.device).view(1, h, 1)
        cols = torch.arange(w, device=x.device).view(1, 1, w)
        # Output pixel u takes y_n[u - d]: the source pixel before the shift.
        return {
            "image": n.view(b, 1, 1),
            "row": (rows - di.view(b, 1, 1)) % h,
            "col": (cols - dj.view(b, 1, 1)) % w,
            "weight": sm.winner_weight().view(b, 1, 1),
            "n_eff": sm.n_eff().view(b, 1, 1),
        }

    def _softmax(self, x, a, s2, label, explain):
        """Scores [B, n * H * W] per chunk of n images; the weighted sum is kept as a spectrum."""
        if self._spectra is None:
            y = self.images.double()
            self._spectra = (torch.fft.rfft2(y), y.square().sum((1, 2, 3)))
        spec, norms = self._spectra
        members = self._candidates(label)
        if members is not None:
            spec, norms = spec[members], norms[members]
        b, c, (h, w) = x.shape[0], self.channels, self.size
        xs = torch.fft.rfft2(x.double())  # [B, C, H, W/2+1]
        step = max(1, self.chunk_size // (b * c * h * w))
        a64, s2 = a.view(b, 1, 1, 1), s2.view(b, 1, 1, 1)
        sm = OnlineSoftmax(explain)
        for n0 in range(0, spec.shape[0], step):
            ys, yn = spec[n0 : n0 + step], norms[n0 : n0 + step]
            corr = torch.fft.irfft2((xs[:, None] * ys[None].conj()).sum(2), s=(h, w))  # [B, n, H, W]
            # -|x - a S_d y|^2 / (2 s^2) without the |x|^2 term, the same for every candidate.
            scores = (a64 * corr - (a64 * a64 / 2) * yn.view(1, -1, 1, 1)) / s2

            def weigh(p, ys=ys):
                # sum_n (w_n circularly convolved with y_n), in Fourier space: [B, C * H * (W/2+1)]
                wf = torch.fft.rfft2(p.view(b, -1, h, w))
                return torch.einsum("bnhk,nchk->bchk", wf, ys).flatten(1)

            sm.add(scores.flatten(1), None if explain else weigh)
        return sm
