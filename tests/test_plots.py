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


def test_silence_on_the_timeline():
    probs = np.random.default_rng(0).dirichlet(np.ones(3), size=5)
    silent = np.array([False, False, True, False, False])
    fig = plots.segment_timeline(probs, 4.0 + np.arange(5) * 3.0, ["a", "b", "c"], segment_seconds=3.0,
                                 silent=silent, trimmed=(4.0, 6.0), seconds=25.0)
    (heat,) = fig.data
    z = np.asarray(heat.z, dtype=float)
    assert np.isnan(z[:, 2]).all() and not np.isnan(z[:, [0, 1, 3, 4]]).any()  # the silent segment is blank
    shaded = [(r.x0, r.x1) for r in fig.layout.shapes]
    assert shaded == [(0.0, 4.0), (19.0, 25.0), (10.0, 13.0)]  # the trimmed ends and the silent segment
    assert [a.text for a in fig.layout.annotations] == ["silence"] * 3


def test_a_long_timeline_zooms_and_sums_up_stretches():
    """A 10-minute clip (201 segments): a zoom slider, and bins of 30 s each showing the genre most
    of its segments voted, as opaque as their confidence; a silent stretch is grey."""
    starts = np.arange(201) * 2.992
    probs = np.zeros((201, 3))
    probs[:100, 0], probs[100:, 2] = 0.9, 0.6  # a, then c less sure
    probs[:100, 1], probs[100:, 1] = 0.1, 0.4
    silent = (starts >= 330) & (starts < 360)
    long = plots.segment_timeline(probs, starts, ["a", "b", "c"], segment_seconds=2.992, silent=silent)
    assert long.layout.xaxis.rangeslider.visible
    assert not plots.segment_timeline(probs[:10], starts[:10], ["a", "b", "c"]).layout.xaxis.rangeslider.visible
    fig = plots.binned_timeline(probs, starts, ["a", "b", "c"], silent=silent)
    assert plots.time_bins(600) == 30 and len(fig.data) == 20  # the last segment starts at 9:58
    first, last = fig.data[0], fig.data[-1]
    assert first.name == "a" and "a (11 of 11 segments, mean p 90%)" in first.hovertemplate
    assert last.name == "c" and last.marker.opacity < first.marker.opacity
    grey = [t for t in fig.data if "silence" in t.hovertemplate]
    assert len(grey) == 1 and grey[0].x[0] == 345  # 5:30-6:00


def test_mel_spectrogram_time_axis_in_seconds():
    frames = extract(synth("tones", seconds=3.0), FeatureConfig(groups=("mel",)))
    fig = plots.mel_spectrogram(frames.log_mel, sr=frames.sr, hop_length=frames.hop_length)
    heat = fig.data[0]
    assert np.asarray(heat.z).shape == frames.log_mel.shape
    assert abs(heat.x[-1] - frames.times()[-1]) < 0.05
    assert fig.layout.yaxis.ticktext[0].isdigit()


def _panel_clip(kind: str, seconds: float, name: str) -> plots.PanelClip:
    y = synth(kind, seconds=seconds)
    frames = extract(y, FeatureConfig())
    return plots.PanelClip(y, SR, frames.matrices, frames.hop_length, frames.times()[frames.beat_frames], name)


def _heatmaps(fig: go.Figure) -> list:
    return [t for t in fig.data if t.type == "heatmap"]


def test_feature_panel_shares_time_and_marks_beats():
    clip = _panel_clip("beats", 4.0, "A")
    fig = plots.feature_panel([clip], titles={"mel": "Mel!"})
    assert len(fig.data) == 2 + 5  # waveform envelope (2 traces) + 5 heatmaps
    assert {a.text for a in fig.layout.annotations} >= {"Mel!", "mfcc", "chroma", "tonnetz", "contrast"}
    assert len(fig.layout.shapes) == 6 * len(clip.beat_times) > 0  # a line per beat in every view
    assert {s.line.color for s in fig.layout.shapes} == {"#ff7f0e"} and {s.opacity for s in fig.layout.shapes} == {0.75}
    xaxes = [fig.layout[k] for k in fig.layout if k.startswith("xaxis")]
    assert all(tuple(ax.range) == (0, 4.0) for ax in xaxes)
    assert sum(ax.matches is None for ax in xaxes) == 1  # every other row follows one axis


def test_feature_panel_units_colour_bars_and_hover():
    fig = plots.feature_panel([_panel_clip("tones", 3.0, "A")])
    mel, mfcc, chroma, tonnetz, contrast = _heatmaps(fig)
    assert all(t.showscale for t in _heatmaps(fig))  # one colour bar per view
    assert [t.colorbar.title.text for t in _heatmaps(fig)] == ["dB", "sd", "of max", "coord.", "sd"]
    assert mel.y[0].endswith(" Hz") and len(set(mel.y)) == len(mel.y) == 128 and "dB" in mel.hovertemplate
    assert 0 < float(mel.y[0].split()[0]) < float(mel.y[-1].split()[0]) < SR / 2  # band centres, rising
    assert list(chroma.y) == ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]
    assert list(tonnetz.y)[0] == "fifth x" and tonnetz.zmid == 0
    assert list(contrast.y) == ["< 200 Hz", "200–400 Hz", "400–800 Hz", "800–1.6 kHz", "1.6k–3.2 kHz",
                                "3.2k–6.4 kHz", "6.4k–11 kHz"]
    assert mfcc.y is None and "MFCC %{y}" in mfcc.hovertemplate
    # MFCC and contrast: every row on its own scale (MFCC 0 and 1 would flatten the others, the top
    # contrast band saturate), the raw values in the hover
    for view in (mfcc, contrast):
        z, raw = np.asarray(view.z, dtype=float), np.asarray(view.customdata, dtype=float)
        assert np.allclose(z.mean(axis=1), 0, atol=1e-4) and np.allclose(z.std(axis=1)[z.std(axis=1) > 0], 1)
        assert np.allclose((raw - raw.mean(axis=1, keepdims=True)) / raw.std(axis=1, keepdims=True), z, atol=1e-5)
        assert (view.zmin, view.zmax, view.zmid) == (-3, 3, 0) and "customdata" in view.hovertemplate
    titles = [fig.layout[k].title.text for k in sorted((k for k in fig.layout if k.startswith("yaxis")),
                                                        key=lambda k: int(k[5:] or 1))]
    assert titles == ["amplitude", "Hz", "MFCC index", "pitch class", "dimension", "band (Hz)"]
    # the colour bars sit beside their own rows, top to bottom
    centres = [t.colorbar.y for t in _heatmaps(fig)]
    assert centres == sorted(centres, reverse=True)


def test_feature_panel_compares_two_clips_on_one_scale():
    a, b = _panel_clip("beats", 4.0, "A"), _panel_clip("tones", 6.0, "B")
    for arrangement in ("stacked", "columns"):
        fig = plots.feature_panel([a, b], arrangement=arrangement)
        heat = _heatmaps(fig)
        assert len(heat) == 10 and sum(t.showscale for t in heat) == 5  # one colour bar per view
        for first, second in zip(heat[::2], heat[1::2]):  # the same view of A and B: one colour range
            assert (first.zmin, first.zmax) == (second.zmin, second.zmax)
        xaxes = [fig.layout[k] for k in fig.layout if k.startswith("xaxis")]
        assert all(tuple(ax.range) == (0, 6.0) for ax in xaxes)  # the longer clip sets the time axis
        assert len(fig.layout.shapes) == 6 * (len(a.beat_times) + len(b.beat_times))
    stacked = plots.feature_panel([a, b])
    assert stacked.layout.yaxis.title.text == "<b>A</b> · amplitude" and stacked.layout.yaxis2.title.text == \
        "<b>B</b> · amplitude"
    assert stacked.layout.height > 1.6 * plots.feature_panel([a]).layout.height
