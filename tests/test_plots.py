"""genre.plots: pure figure builders (data in, plotly figure out)."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from conftest import SR, synth
from genre import plots
from genre.features import FeatureConfig, extract


def test_pool_columns_keeps_means_and_limits_width():
    m = np.arange(2 * 1001, dtype=np.float32).reshape(2, 1001)
    pooled, factor = plots.pool_columns(m, 100)
    assert pooled.shape[1] <= 101 and factor == 11
    np.testing.assert_allclose(pooled[:, 0], m[:, :11].mean(axis=1))
    same, one = plots.pool_columns(m[:, :50], 100)
    assert one == 1 and same.shape == (2, 50)


def test_envelope_bounds_the_waveform():
    y = synth("beats", seconds=2.0)
    t, lo, hi = plots.envelope(y, SR, max_points=500)
    assert len(t) <= 500 and len(t) == len(lo) == len(hi)
    assert np.all(lo <= hi) and hi.max() <= y.max() and lo.min() >= y.min()
    assert t[0] == 0 and t[-1] < 2.0


def test_probability_bars_sorted_with_winner_on_top():
    labels = ["blues", "jazz", "rock", "pop"]
    fig = plots.probability_bars(labels, np.array([0.1, 0.5, 0.3, 0.1]))
    bar = fig.data[0]
    assert isinstance(fig, go.Figure) and bar.orientation == "h"
    assert list(bar.y)[-1] == "jazz" and list(bar.y)[-2] == "rock" and len(bar.y) == 4
    top2 = plots.probability_bars(labels, np.array([0.1, 0.5, 0.3, 0.1]), k=2).data[0]
    assert list(top2.y) == ["rock", "jazz"] and list(top2.x) == [0.3, 0.5]


def test_segment_timeline_is_labels_by_time():
    probs = np.random.default_rng(0).dirichlet(np.ones(3), size=5)
    fig = plots.segment_timeline(probs, np.arange(5) * 3.0, ["a", "b", "c"], segment_seconds=3.0)
    heat = fig.data[0]
    assert np.asarray(heat.z).shape == (3, 5) and list(heat.y) == ["a", "b", "c"]
    np.testing.assert_allclose(heat.x, np.arange(5) * 3.0 + 1.5)


def test_mel_spectrogram_time_axis_in_seconds():
    frames = extract(synth("tones", seconds=3.0), FeatureConfig(groups=("mel",)))
    fig = plots.mel_spectrogram(frames.log_mel, sr=frames.sr, hop_length=frames.hop_length)
    heat = fig.data[0]
    assert np.asarray(heat.z).shape == frames.log_mel.shape
    assert abs(heat.x[-1] - frames.times()[-1]) < 0.05
    assert fig.layout.yaxis.ticktext[0].isdigit()


def test_feature_panel_shares_time_and_marks_beats():
    y = synth("beats", seconds=4.0)
    frames = extract(y, FeatureConfig())
    beats = frames.times()[frames.beat_frames]
    fig = plots.feature_panel(y, SR, frames.matrices, hop_length=frames.hop_length, beat_times=beats,
                              titles={"mel": "Mel!"}, x_max=6.0)
    assert len(fig.data) == 2 + 5  # waveform envelope (2 traces) + 5 heatmaps
    assert {a.text for a in fig.layout.annotations} >= {"Mel!", "mfcc", "chroma", "tonnetz", "contrast"}
    assert len(fig.layout.shapes) == len(beats) > 0
    xaxes = [fig.layout[k] for k in fig.layout if k.startswith("xaxis")]
    assert all(tuple(ax.range) == (0, 6.0) for ax in xaxes)
    assert sum(ax.matches is None for ax in xaxes) == 1  # every other row follows the bottom axis
