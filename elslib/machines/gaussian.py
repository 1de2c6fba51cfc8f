r"""The Gaussian (Wiener) denoiser: the best *linear* denoiser of the training set.

If all a denoiser may know of the data is its mean mu and covariance Sigma (the training set's
own, divided by N), the best estimate of x0 from x_t = a x0 + s eps that is linear in x_t is

    x0_hat = mu + a Sigma (a^2 Sigma + s^2 I)^-1 (x_t - a mu),

which is also the exact posterior mean when the data *are* Gaussian. With one eigendecomposition
Sigma = U diag(lambda) U^T, done once in float64, every call is two matrix products:

    x0_hat = mu + U diag( a lambda / (a^2 lambda + s^2) ) U^T (x_t - a mu).

Each eigen-direction is kept where its variance beats the noise (a^2 lambda >> s^2) and shrunk
to the mean where it does not. Lukoianov et al. (2025) show that this denoiser, knowing nothing
but pixel correlations, is already local: its gradient maps have a width set by the data.
Unlike the other machines it is not a softmax over candidates, so there is nothing to explain
per pixel, and it draws blurred averages rather than patch mosaics.
"""

from __future__ import annotations

import torch

from .base import Machine


class GaussianDenoiser(Machine):
    """Exact Wiener denoiser from the training set's mean and covariance (any C, H, W).

    ``GaussianDenoiser(images, schedule=None, labels=None, device=None)``; call
    ``den(x_t, t, label=None)`` with x_t [B, C, H, W] and t a float or a [B] tensor, like the
    other machines. With ``labels``, ``label=k`` uses class k's own mean and covariance.

    Building it costs one float64 eigendecomposition of a D x D matrix per class (D = C H W:
    1,024 for MNIST, well under a second; 3,072 for CIFAR-10, seconds) and keeps D x D float64
    eigenvectors for each (8 MiB for MNIST, 72 MiB for CIFAR-10, per class).
    """

    def __init__(self, images, schedule=None, labels=None, device=None, **kwargs):
        super().__init__(images, schedule=schedule, labels=labels, device=device, **kwargs)
        self._stats = {None: _moments(self.images)}
        for c, members in self._members.items():
            self._stats[c] = _moments(self.images[members])

    def _denoise(self, x, a, s2, patch_size, label):
        mu, lam, u = self._stats[label]
        a = a.to(torch.float64)
        y = x.flatten(1).to(torch.float64) - a[:, None] * mu  # x_t - a mu, [b, D]
        gain = a[:, None] * lam[None] / (a[:, None] ** 2 * lam[None] + s2.to(torch.float64)[:, None])
        out = mu + ((y @ u) * gain) @ u.T
        return out.view_as(x).to(x.dtype)

    def _explain(self, x, a, s2, patch_size, label):
        raise NotImplementedError(
            "GaussianDenoiser has no candidates to explain: its prediction is linear in x_t, not a softmax "
            "over training images or patches (use elslib.receptive for its gradient maps)"
        )

    def gradient_map(self, t, pixel, channel: int = 0, label=None) -> torch.Tensor:
        """d x0_hat[channel, row, col] / d x_t: [C, H, W] float64, exact (the denoiser is linear).

        The same for every x_t: row u of U diag(a lambda / (a^2 lambda + s^2)) U^T. Compare it
        with a network's ``receptive.gradient_map`` (chapter 10): how wide is a denoiser's view
        that knows only the pixels' correlations?
        """
        from ..checks import check_integer

        mu, lam, u = self._stats[self._check_label(label, 1)[0] if label is not None else None]
        c, (h, w) = self.channels, self.size
        row, col = (check_integer(v, "pixel", low=0) for v in pixel) if len(pixel) == 2 else (None, None)
        if row is None or row >= h or col >= w:
            raise ValueError(f"pixel must be (row, col) inside the {h}x{w} image, got {pixel!r}")
        channel = check_integer(channel, "channel", low=0)
        if channel >= c:
            raise ValueError(f"channel must be below {c}, got {channel}")
        tt = torch.as_tensor([float(t)], dtype=torch.float64)
        x, a, s2, _, _ = self._inputs(torch.zeros(1, c, h, w), tt, None)
        gain = a * lam / (a * a * lam + s2)
        index = (channel * h + row) * w + col
        return ((u[index] * gain) @ u.T).view(c, h, w)

    @property
    def eigenvalues(self) -> torch.Tensor:
        """The variances lambda [D] of the whole training set's principal directions, largest first."""
        return self._stats[None][1].flip(0)


def _moments(images: torch.Tensor):
    """Mean mu [D], eigenvalues lambda [D] (ascending) and eigenvectors U [D, D] of the covariance.

    The covariance divides by N: the optimal linear denoiser *of this training set*. Eigenvalues
    a hair below zero are rounding in eigh (a covariance is positive semidefinite); they are set to
    0 so that no direction is amplified by a negative gain.
    """
    y = images.flatten(1).to(torch.float64)
    mu = y.mean(0)
    centred = y - mu
    cov = centred.T @ centred / y.shape[0]
    lam, u = torch.linalg.eigh(cov)
    return mu, lam.clamp_min(0.0), u
