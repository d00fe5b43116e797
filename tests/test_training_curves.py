"""genre.plots.training_curves: the Train page's live chart (legend, x-axis over the epochs run,
the best epoch marked)."""
from __future__ import annotations

from genre import plots


def history(val_losses):
    return [{"epoch": i + 1, "loss": 1.0 / (i + 1), "accuracy": 0.1 * (i + 1), "val_loss": v,
             "val_accuracy": 0.5 - abs(v - 0.5)} for i, v in enumerate(val_losses)]


def test_the_x_axis_spans_the_epochs_run_so_far_and_the_best_epoch_is_marked():
    fig = plots.training_curves(history([0.9, 0.7, 0.6, 0.65, 0.8]))
    assert fig.layout.xaxis.range == (0.5, 5.5) and fig.layout.xaxis2.range == (0.5, 5.5)
    assert fig.layout.showlegend
    shown = [t.name for t in fig.data if t.showlegend]
    assert shown == ["training", "validation", "best epoch (3)"]
    stars = [t for t in fig.data if t.name == "best epoch (3)"]
    assert [(t.x[0], t.y[0]) for t in stars] == [(3, 0.6), (3, 0.4)]  # loss panel, accuracy panel
    assert [s.x0 for s in fig.layout.shapes] == [3, 3]  # a dotted line through both panels
    assert plots.best_epoch(history([0.9, 0.7, 0.6, 0.65, 0.8])) == 3


def test_a_longer_run_widens_the_axis():
    assert plots.training_curves(history([1.0 - 0.01 * i for i in range(40)])).layout.xaxis.range == (0.5, 40.5)


def test_one_point_is_drawn_large_without_a_best_marker():
    """A logistic regression reports one 'epoch': the chart must not be empty or a hairline."""
    fig = plots.training_curves(history([0.7]))
    assert fig.layout.xaxis.range == (0.5, 1.5)
    assert all(t.marker.size >= 10 for t in fig.data) and not fig.layout.shapes
    assert plots.best_epoch([{"epoch": 1, "loss": 0.3}]) is None
