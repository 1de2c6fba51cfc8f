"""What a machine did at each pixel: which training patch won, by how much, among how many.

Every machine's output pixel is a softmax-weighted average over candidates (docs/architecture.md).
``den.explain(x_t, t)`` opens that average up, one entry per output pixel:

- ``image``, ``row``, ``col``: the winning candidate (largest weight) as a place in the training
  set -- training image index and the pixel of that image whose value the candidate
  contributes (for patch machines: the centre of the winning patch; for the ideal machine: the
  pixel itself; for the equivariant machine: the source pixel before the shift). On ties
  (identical patches) one of the tied candidates is reported.
- ``weight``: the softmax weight of that one candidate (identical copies elsewhere in the
  training set are separate candidates with the same weight each).
- ``n_eff``: exp(entropy of the weights), the effective number of candidates: 1 for a hard
  choice, the number of candidates for a uniform average. Duplicates count separately.

Candidates are whole patches (all channels at once), so these are per pixel, not per channel.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch


@dataclass
class Explanation:
    """Per-pixel account of a machine's softmax; every field is a tensor [B, H, W]."""

    image: torch.Tensor  # int64: training image index of the winning candidate
    row: torch.Tensor  # int64: row of the winning candidate's source pixel in that image
    col: torch.Tensor  # int64: column of that pixel
    weight: torch.Tensor  # float32: softmax weight of the winning candidate, in (0, 1]
    n_eff: torch.Tensor  # float32: exp(entropy of the weights), >= 1

    @classmethod
    def gather(cls, parts, b: int, size: tuple[int, int], device) -> Explanation:
        """Assemble per-group dicts of [b_i, H, W] tensors into one batch (index tensors say where)."""
        h, w = size
        out = {
            "image": torch.zeros(b, h, w, dtype=torch.int64, device=device),
            "row": torch.zeros(b, h, w, dtype=torch.int64, device=device),
            "col": torch.zeros(b, h, w, dtype=torch.int64, device=device),
            "weight": torch.zeros(b, h, w, dtype=torch.float32, device=device),
            "n_eff": torch.zeros(b, h, w, dtype=torch.float32, device=device),
        }
        for idx, part in parts:
            for name, tensor in out.items():
                tensor[idx] = part[name].to(tensor.dtype).expand(len(idx), h, w)
        return cls(**out)

    def to(self, device) -> Explanation:
        """The same explanation with its tensors on `device`."""
        return Explanation(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    def __getitem__(self, i) -> Explanation:
        """Select images of the batch, e.g. ``ex[0:1]``."""
        return Explanation(**{f.name: getattr(self, f.name)[i] for f in fields(self)})


def source_pixels(flat: torch.Tensor, size: tuple[int, int]) -> dict:
    """Split flat training-set positions n * H * W + i * W + j into image, row and col tensors."""
    h, w = size
    return {"image": flat // (h * w), "row": (flat // w) % h, "col": flat % w}
