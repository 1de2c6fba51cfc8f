r"""The equivariant local score machine (ELS): locality + equivariance = a patch mosaic.

A convolutional denoiser is local (a pixel sees a P x P receptive field) and equivariant (the
same filter everywhere). The optimal denoiser under both constraints lets output pixel u choose
from training patches taken *anywhere*:

    x0_hat[u] = sum_c w_c centre(k_c),   w = softmax_c( -|patch_u(x_t) - a k_c|^2 / (2 s^2) ).

Which patches k_c are candidates depends on the padding, as it does for a CNN:

- ``circular``: the image is a torus, every place is alike: every wrapped P x P patch of every
  training image, at every position, is a candidate for every pixel.
- ``zeros`` (boundary-broken): a conv net with zero padding can tell how far a pixel is from the
  border, up to its receptive field. Per axis, a pixel closer than P // 2 to an edge only sees
  training patches at its own coordinate on that axis; an interior pixel sees every interior
  coordinate. So interior pixels share all fully-interior patches; a pixel on row 0 at an
  interior column sees patches centred on row 0 at any interior column; corner pixels see only
  their own position (there ELS is the local machine).

Pixels with the same candidate set form a group: one key table per group (patches.py, with
identical patches merged), scored by the attention backend (attention.py).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from itertools import product

import numpy as np
import torch

from ..checks import check_choice
from .attention import attend, attend_explain
from .base import PatchMachine, check_patch_size
from .explain import source_pixels
from .local import local_explain, local_softmax, local_softmax_at
from .patches import KeyTable, StreamedKeys, build_keys, pad, patches_at, plan_keys, windows

PADDINGS = ["zeros", "circular"]


# Default memory for stored key tables, over all patch sizes of one machine. The tables of the
# sizes used least recently make room for a new size; groups that still do not fit are streamed
# from the training images at each call: same result, slower.
TABLE_BUDGET = 2**30


@dataclass
class Group:
    """Output pixels rows x cols that share one candidate set: the patches in `keys`."""

    rows: torch.Tensor
    cols: torch.Tensor
    keys: KeyTable | StreamedKeys


@dataclass
class Layout:
    """Everything an ELS machine precomputes for one patch size."""

    groups: list
    single: torch.Tensor | None  # [H, W] bool: pixels whose candidates sit at the pixel itself
    single_patches: torch.Tensor | None = None  # [N, S, D] training patches at those pixels
    single_values: torch.Tensor | None = None  # [N, C, S] their centre values

    @property
    def table_bytes(self) -> int:
        """Bytes held by the stored key tables (streamed groups hold none)."""
        return sum(g.keys.nbytes for g in self.groups if isinstance(g.keys, KeyTable))


# Singleton pixels (corners) are computed from cached training patches while these take at most
# this many bytes; beyond (large P, where most pixels are singletons), from whole images.
SINGLE_PATCH_BYTES = 2**26


def axis_classes(n: int, r: int) -> list[list[int]]:
    """Coordinates of one axis (length n) grouped by what a zero-padded conv can tell apart.

    Coordinates within r of an edge are each their own class; the interior ones (r .. n-1-r)
    form one class, if there are any.
    """
    inner = list(range(r, n - r))
    classes = [[i] for i in range(n) if i < r or i >= n - r]
    return classes + ([inner] if inner else [])


class ELSDenoiser(PatchMachine):
    """Equivariant local score machine.

    ``ELSDenoiser(images, patch_size=7, padding="zeros", schedule=None, labels=None, device=None,
    chunk_size=2**21, dedup=True, table_budget=2**30)``.

    patch_size: odd int, or a callable t -> odd int (a scale schedule). With ``padding="zeros"``
    any odd P up to 2 max(H, W) - 1; windows are zero padded with the value 0 (mid-grey in
    [-1, 1], *not* the background -1), as a conv layer pads. With ``padding="circular"``
    P <= min(H, W), windows wrap around.
    dedup: merge bit-identical training patches into one weighted key (exact; faster).
    table_budget: bytes of stored key tables, over all patch sizes. Each group's table is built
    on first use of its P and cached (``prepare(P)`` builds them ahead); it takes about
    (number of distinct patches) x (C P^2 + C + 8) x 4 bytes. When a new P needs room, the
    tables of the sizes used least recently are dropped (and rebuilt if that P comes back): a
    sampler with a scale schedule visits P in order of t, so the sizes it has left go first.
    Groups that do not fit even then are cut from the training images at every call instead:
    same result, slower.
    """

    def __init__(
        self, images, patch_size=7, padding: str = "zeros", dedup: bool = True, table_budget=TABLE_BUDGET, **kwargs
    ):
        self.padding = check_choice(padding, "padding", PADDINGS)
        self.circular = padding == "circular"
        if not isinstance(dedup, (bool, np.bool_)):
            raise ValueError(f"dedup must be True or False, got {dedup!r}")
        self.dedup = bool(dedup)
        if isinstance(table_budget, bool) or not isinstance(table_budget, (int, float)) or not table_budget >= 0:
            raise ValueError(f"table_budget must be a number of bytes >= 0, got {table_budget!r}")
        self.table_budget = table_budget
        self.table_bytes = 0  # spent so far
        self._layouts: OrderedDict[int, Layout] = OrderedDict()  # least recently used first
        super().__init__(images, patch_size, **kwargs)

    def prepare(self, patch_size: int) -> Layout:
        """Build (or fetch) the key tables for one patch size; returns the cached layout."""
        p = check_patch_size(patch_size, self.size, self.circular)
        if p in self._layouts:
            self._layouts.move_to_end(p)
        else:
            self._layouts[p] = self._build_layout(p)
        return self._layouts[p]

    def _make_room(self, need: int) -> float:
        """Drop the least recently used sizes' tables until `need` more bytes fit; returns the room.

        Called while a new size's layout is built (it is not in ``_layouts`` yet). Nothing is
        dropped for a table that would not fit even beside that layout alone.
        """
        others = sum(layout.table_bytes for layout in self._layouts.values())
        if self.table_bytes - others + need > self.table_budget:
            return self.table_budget - self.table_bytes
        while self.table_bytes + need > self.table_budget:
            _, old = self._layouts.popitem(last=False)
            self.table_bytes -= old.table_bytes
        return self.table_budget - self.table_bytes

    def _build_layout(self, p: int) -> Layout:
        h, w = self.size
        r = p // 2
        if self.circular:
            row_classes, col_classes = [list(range(h))], [list(range(w))]
        else:
            row_classes, col_classes = axis_classes(h, r), axis_classes(w, r)
        groups, single = [], torch.zeros(h, w, dtype=torch.bool, device=self.device)
        shapes = []
        for rc, cc in product(row_classes, col_classes):
            if len(rc) == 1 and len(cc) == 1 and not self.circular:
                single[rc[0], cc[0]] = True  # candidates: the patches at this very pixel (LS)
            else:
                shapes.append((rc, cc))
        # Largest groups first: they gain most from a stored, deduplicated table.
        padded = pad(self.images, r, self.padding)  # shared by the groups (streamed ones keep it)
        for rc, cc in sorted(shapes, key=lambda g: -len(g[0]) * len(g[1])):
            rows = torch.tensor(rc, device=self.device)
            cols = torch.tensor(cc, device=self.device)
            # count the group's distinct patches, decide where they live, then build (or stream)
            plan = plan_keys(self.images, p, self.padding, rows, cols, self.labels, self.dedup, padded)
            if plan.nbytes <= self._make_room(plan.nbytes):
                keys = build_keys(plan)
                self.table_bytes += keys.nbytes
            else:
                keys = StreamedKeys(self.images, p, self.padding, rows, cols, self.labels, padded=padded)
            del plan
            groups.append(Group(rows, cols, keys))
        if not bool(single.any()):
            return Layout(groups, None)
        layout = Layout(groups, single)
        pixels = torch.nonzero(single.flatten()).flatten()
        n, c = self.images.shape[:2]
        if n * len(pixels) * c * p * p * 4 <= SINGLE_PATCH_BYTES:
            win = windows(padded, p)[:, :, pixels // w, pixels % w]  # [N, C, S, P, P] (zero padded)
            layout.single_patches = win.permute(0, 2, 1, 3, 4).reshape(n, len(pixels), c * p * p).contiguous()
            layout.single_values = self.images.flatten(2)[:, :, pixels].contiguous()
        return layout

    def _denoise(self, x, a, s2, patch_size, label):
        layout = self.prepare(patch_size)
        out = torch.empty_like(x)
        if layout.single is not None:
            if layout.single_patches is None:
                local = local_softmax(self._train(label), x, a, s2, patch_size, self.chunk_size).result()
                out[:, :, layout.single] = local[:, :, layout.single]
            else:
                out[:, :, layout.single] = self._singles(layout, x, a, s2, patch_size, label, False).result()
        for g, q, qa, qs2 in self._queries(layout, x, a, s2, patch_size):
            res = attend(q, qa, qs2, g.keys, label, self.chunk_size)
            out[:, :, g.rows[:, None], g.cols[None, :]] = res.view(x.shape[0], len(g.rows), len(g.cols), -1).permute(
                0, 3, 1, 2
            )
        return out

    def _explain(self, x, a, s2, patch_size, label):
        layout = self.prepare(patch_size)
        b, (h, w) = x.shape[0], self.size
        fields = {
            "image": torch.zeros(b, h, w, dtype=torch.int64, device=x.device),
            "row": torch.zeros(b, h, w, dtype=torch.int64, device=x.device),
            "col": torch.zeros(b, h, w, dtype=torch.int64, device=x.device),
            "weight": torch.zeros(b, h, w, dtype=torch.float64, device=x.device),
            "n_eff": torch.zeros(b, h, w, dtype=torch.float64, device=x.device),
        }
        if layout.single is not None:
            if layout.single_patches is None:
                members = self._candidates(label)
                local = local_explain(self._train(label), members, x, a, s2, patch_size, self.chunk_size)
                for name, tensor in fields.items():
                    tensor[:, layout.single] = local[name].expand(b, h, w)[:, layout.single].to(tensor.dtype)
            else:
                sm = self._singles(layout, x, a, s2, patch_size, label, True)
                members = self._candidates(label)
                winner = sm.arg[:, 0] if members is None else members[sm.arg[:, 0]]  # [B, S]
                fields["image"][:, layout.single] = winner
                fields["row"][:, layout.single] = torch.nonzero(layout.single)[:, 0]
                fields["col"][:, layout.single] = torch.nonzero(layout.single)[:, 1]
                fields["weight"][:, layout.single] = sm.winner_weight()[:, 0]
                fields["n_eff"][:, layout.single] = sm.n_eff()[:, 0]
        for g, q, qa, qs2 in self._queries(layout, x, a, s2, patch_size):
            winner, weight, n_eff = attend_explain(q, qa, qs2, g.keys, label, self.chunk_size)
            found = source_pixels(winner, self.size)
            found["weight"], found["n_eff"] = weight, n_eff
            for name, tensor in fields.items():
                tensor[:, g.rows[:, None], g.cols[None, :]] = (
                    found[name].view(b, len(g.rows), len(g.cols)).to(tensor.dtype)
                )
        return fields

    def _singles(self, layout: Layout, x, a, s2, p: int, label, explain: bool):
        """Local-machine softmax at the singleton pixels, from the cached training patches."""
        members = self._candidates(label)
        patches, values = layout.single_patches, layout.single_values
        if members is not None:
            patches, values = patches[members], values[members]
        pixels = torch.nonzero(layout.single.flatten()).flatten()
        return local_softmax_at(patches, values, x, a, s2, p, pixels, self.chunk_size, explain)

    def _queries(self, layout: Layout, x, a, s2, p: int):
        """Per group: the group, its query patches [B * R * K, D], and a, s2 per query."""
        win = windows(pad(x, p // 2, self.padding), p)
        for g in layout.groups:
            per_image = len(g.rows) * len(g.cols)
            q = patches_at(win, g.rows, g.cols)
            yield g, q, a.repeat_interleave(per_image), s2.repeat_interleave(per_image)

    def _train(self, label):
        members = self._candidates(label)
        return self.images if members is None else self.images[members]

    def _repr_fields(self) -> dict:
        return {"patch_size": self.patch_size, "padding": self.padding}
