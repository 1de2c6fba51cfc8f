"""plots.show_grid: every image shown, captions clear of the row above, bad input named."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from elslib import plots  # noqa: E402


def test_two_line_captions_stay_clear_of_the_row_above():
    images = torch.rand(8, 1, 32, 32) * 2 - 1
    fig = plots.show_grid(images, labels=[f"image {i}\nsecond line" for i in range(8)], ncols=4, title="grid")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    axes = fig.axes
    assert len(axes) == 8
    for top, below in zip(axes[:4], axes[4:], strict=True):
        image_bottom = top.get_window_extent(renderer).y0
        caption_top = below.title.get_window_extent(renderer).y1
        assert caption_top < image_bottom, (caption_top, image_bottom)
    plt.close(fig)


def test_a_grid_draws_every_image_and_blanks_the_rest():
    images = torch.linspace(-1, 1, 5).view(5, 1, 1, 1).expand(5, 1, 4, 4)
    fig = plots.show_grid(images, ncols=3)
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == 5 and len(fig.axes) == 6
    for k, ax in enumerate(shown):  # [-1, 1] -> [0, 1]
        assert float(ax.images[0].get_array().mean()) == pytest.approx((float(images[k, 0, 0, 0]) + 1) / 2, abs=1e-6)
    plt.close(fig)


@pytest.mark.parametrize(
    ("images", "labels", "message"),
    [(torch.zeros(0, 1, 4, 4), None, "images is empty"), (torch.zeros(3, 1, 4, 4), ["a", "b"], "labels has 2 entries")],
)
def test_bad_grids_are_named(images, labels, message):
    with pytest.raises(ValueError, match=message):
        plots.show_grid(images, labels=labels)
