"""Tests for d2lcv.plot, drawn with the Agg backend (no display)."""

from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from PIL import Image  # noqa: E402

from d2lcv import plot  # noqa: E402
from d2lcv.engine import History  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def history(epochs: int = 3, val: bool = True) -> History:
    h = History()
    for e in range(1, epochs + 1):
        record = dict(epoch=e, train_loss=1 / e, train_acc=1 - 1 / (e + 1), lr=0.1, time=1.0)
        if val:
            record.update(val_loss=1.2 / e, val_acc=0.9 - 1 / (e + 2))
        h.append(**record)
    return h


class TestShowImages:
    def test_mixed_inputs(self):
        imgs = [
            torch.rand(3, 8, 8),  # CHW float
            torch.randint(0, 256, (3, 8, 8), dtype=torch.uint8),  # CHW uint8
            torch.rand(1, 8, 8),  # one channel -> grey
            np.random.rand(8, 8, 3),  # HWC numpy
            Image.new("RGB", (8, 8), (255, 0, 0)),  # PIL
        ]
        axes = plot.show_images(imgs, 2, 3, titles=list("abcde"))
        assert axes.shape == (6,)
        assert [len(ax.images) for ax in axes] == [1, 1, 1, 1, 1, 0]
        assert axes[2].images[0].get_cmap().name == "gray"
        assert axes[4].get_title() == "e"
        np.testing.assert_array_equal(axes[1].images[0].get_array(), imgs[1].permute(1, 2, 0).numpy())

    def test_batch_tensor_and_float_clipping(self):
        batch = torch.full((2, 3, 4, 4), 2.0)  # out of range: clipped to 1
        axes = plot.show_images(batch, 1, 2)
        assert axes[0].images[0].get_array().max() == 1.0

    def test_too_many_images(self):
        with pytest.raises(ValueError, match=r"5 images do not fit in a 2x2 grid"):
            plot.show_images([torch.rand(3, 4, 4)] * 5, 2, 2)

    def test_titles_mismatch(self):
        with pytest.raises(ValueError, match=r"got 1 titles for 2 images"):
            plot.show_images([torch.rand(3, 4, 4)] * 2, 1, 2, titles=["a"])

    def test_bad_image_shape(self):
        with pytest.raises(ValueError, match=r"an image must be \[H, W\] or \[H, W, 3\|4\].*got shape \(8, 8, 5\)"):
            plot.show_images([np.zeros((8, 8, 5))], 1, 1)


class TestDrawBoxes:
    def test_adds_one_rectangle_per_box(self):
        _, ax = plt.subplots()
        ax.imshow(np.zeros((50, 50, 3)))
        boxes = torch.tensor([[10.0, 20.0, 30.0, 45.0], [0.0, 0.0, 5.0, 5.0]])
        out = plot.draw_boxes(ax, boxes, labels=["cat", "dog"], scores=torch.tensor([0.9, 0.25]))
        assert out is ax
        rects = [p for p in ax.patches if isinstance(p, Rectangle)]
        assert len(rects) == 2
        # xyxy (10, 20, 30, 45) -> corner (10, 20), width 20, height 25
        assert rects[0].get_xy() == (10.0, 20.0)
        assert (rects[0].get_width(), rects[0].get_height()) == (20.0, 25.0)
        assert [t.get_text() for t in ax.texts] == ["cat 0.90", "dog 0.25"]

    def test_colors_and_no_captions(self):
        _, ax = plt.subplots()
        plot.draw_boxes(ax, [[0, 0, 1, 1], [1, 1, 2, 2], [2, 2, 3, 3]], colors="red")
        assert len(ax.patches) == 3 and not ax.texts
        assert all(p.get_edgecolor() == (1.0, 0.0, 0.0, 1.0) for p in ax.patches)

    def test_empty(self):
        _, ax = plt.subplots()
        plot.draw_boxes(ax, torch.zeros(0, 4))
        assert len(ax.patches) == 0

    @pytest.mark.parametrize("shape", [(4,), (2, 5), (1, 2, 4)])
    def test_bad_shape(self, shape):
        _, ax = plt.subplots()
        expected = f"boxes must have shape [N, 4] (xyxy pixels), got shape {shape}"
        with pytest.raises(ValueError, match=re.escape(expected)):
            plot.draw_boxes(ax, torch.zeros(shape))

    def test_length_mismatch(self):
        _, ax = plt.subplots()
        with pytest.raises(ValueError, match=r"got 1 labels for 2 boxes"):
            plot.draw_boxes(ax, torch.zeros(2, 4), labels=["a"])
        with pytest.raises(ValueError, match=r"got 3 colors for 2 boxes"):
            plot.draw_boxes(ax, torch.zeros(2, 4), colors=["r", "g", "b"])


class TestPlotHistory:
    def test_train_and_val_curves(self):
        axes = plot.plot_history(history(3))
        assert len(axes) == 2
        loss_ax, acc_ax = axes
        assert [line.get_label() for line in loss_ax.lines] == ["train", "val"]
        np.testing.assert_allclose(loss_ax.lines[0].get_ydata(), [1, 1 / 2, 1 / 3])
        np.testing.assert_allclose(acc_ax.lines[1].get_xdata(), [1, 2, 3])
        assert loss_ax.get_ylabel() == "loss"

    def test_given_axes_and_dict_input(self):
        _, ax = plt.subplots()
        h = {"epoch": [1, 2], "train_loss": [0.5, 0.3]}
        out = plot.plot_history(h, ax, metrics=("loss",))
        assert out[0] is ax and len(ax.lines) == 1

    def test_axes_mismatch(self):
        _, ax = plt.subplots()
        with pytest.raises(ValueError, match=r"got 1 axes for 2 metrics \('loss', 'acc'\)"):
            plot.plot_history(history(), ax)


class TestLivePlot:
    def test_render_outside_notebook(self):
        live = plot.LivePlot()
        png = live.render(history(2))
        assert png.startswith(b"\x89PNG")
        live.update(history(2))  # not in Jupyter: nothing shown, no handle
        assert live.handle is None

    def test_updates_one_display_handle(self, monkeypatch):
        # in Jupyter: the first update displays the figure, later ones replace it in place
        import IPython.display

        shown, replaced = [], []

        class Handle:
            def update(self, obj):
                replaced.append(obj)

        def fake_display(obj, display_id=False):
            shown.append(obj)
            return Handle()

        monkeypatch.setattr("d2lcv.plot.history.jupyter_shell", lambda: object())
        monkeypatch.setattr(IPython.display, "display", fake_display)
        live = plot.LivePlot()
        for epochs in (1, 2, 3):
            live.update(history(epochs))
        assert len(shown) == 1 and len(replaced) == 2
        assert replaced[-1].data.startswith(b"\x89PNG")

    def test_no_global_matplotlib_changes(self):
        before = dict(matplotlib.rcParams)
        plot.use_svg_display()  # outside Jupyter: a no-op
        plot.plot_history(history())
        plot.LivePlot().render(history())
        assert dict(matplotlib.rcParams) == before

    def test_use_svg_display_bad_format(self):
        with pytest.raises(ValueError, match=r"fmt must be 'svg', 'retina' or 'png', got 'jpg'"):
            plot.use_svg_display("jpg")


class TestCompareHistories:
    def test_draws_curves_and_bars(self):
        runs = {"none": {"epoch": [1, 2], "train_acc": [0.5, 0.9], "val_acc": [0.4, 0.5]},
                "aug": {"epoch": [1, 2], "train_acc": [0.4, 0.6], "val_acc": [0.4, 0.55]}}
        axes = plot.compare_histories(runs)
        assert len(axes[0].lines) == 4  # train and test per run
        assert len(axes[1].patches) == 4  # train and test bar per run
        assert [t.get_text() for t in axes[1].get_xticklabels()] == ["none", "aug"]
        plt.close("all")

    def test_empty(self):
        with pytest.raises(ValueError, match="histories is empty"):
            plot.compare_histories({})


class TestClassColours:
    def test_same_class_same_colour_across_calls_and_panels(self):
        fig, (a, b) = plt.subplots(1, 2)
        boxes = torch.tensor([[0.0, 0, 5, 5], [2, 2, 8, 8]])
        plot.draw_boxes(a, boxes, labels=["cat", "dog"])
        plot.draw_boxes(b, boxes, labels=["dog", "cat"])
        colour = lambda ax, i: ax.patches[i].get_edgecolor()  # noqa: E731
        assert colour(a, 0) == colour(b, 1) and colour(a, 1) == colour(b, 0) != colour(a, 0)
        plt.close(fig)

    def test_class_list_gives_distinct_colours(self):
        classes = [f"c{i}" for i in range(20)]
        assert len({plot.class_color(c, classes) for c in classes}) == 20
        assert plot.class_color("c3", classes) == plot.PALETTE[3]
        assert plot.class_color("not listed", classes) == plot.class_color("not listed")

    def test_explicit_colours_win(self):
        fig, ax = plt.subplots()
        plot.draw_boxes(ax, torch.tensor([[0.0, 0, 1, 1]]), labels=["cat"], colors="black")
        assert ax.patches[0].get_edgecolor()[:3] == (0.0, 0.0, 0.0)
        plt.close(fig)


def test_epoch_ticks_are_whole_numbers():
    axes = plot.plot_history({"epoch": [1, 2, 3], "train_loss": [1.0, 0.5, 0.4], "val_loss": [1.1, 0.7, 0.6],
                              "train_acc": [0.1, 0.5, 0.6], "val_acc": [0.1, 0.4, 0.5]})
    ticks = axes[0].get_xticks()
    assert len(ticks) and all(float(t).is_integer() for t in ticks)
    plt.close("all")
