"""Plotly figure builders: plain data in, ``go.Figure`` out (no Streamlit, no I/O).

Times are in seconds, probabilities in [0, 1], spectrograms in dB. Large matrices are pooled
along time to at most ``max_columns`` columns so a figure stays light in the browser.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.colors
import plotly.graph_objects as go
from plotly.subplots import make_subplots

MAX_COLUMNS = 800
MAX_POINTS = 4000
_HEAT = plotly.colors.make_colorscale(["#010005", *plotly.colors.sequential.Magma[1:]])
"""Magma, except its first colour '#000004', which Streamlit's plotly theme swaps for pink."""
_ACCENT = "#e4572e"
_MUTED = "#8da0cb"


def pool_columns(matrix: np.ndarray, max_columns: int = MAX_COLUMNS) -> tuple[np.ndarray, int]:
    """Average adjacent columns of (rows, n) so at most ``max_columns`` remain.
    Returns the pooled (rows, m) matrix and the pooling factor."""
    factor = max(1, int(np.ceil(matrix.shape[1] / max_columns)))
    if factor == 1:
        return matrix, 1
    n = matrix.shape[1] // factor * factor
    pooled = matrix[:, :n].reshape(matrix.shape[0], -1, factor).mean(axis=2)
    if n < matrix.shape[1]:
        pooled = np.concatenate([pooled, matrix[:, n:].mean(axis=1, keepdims=True)], axis=1)
    return pooled, factor


def envelope(y: np.ndarray, sr: int, max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Min/max envelope of waveform ``y`` (n_samples,) at ``sr`` Hz in at most ``max_points``
    bins: (bin start times in s, minima, maxima)."""
    size = max(1, int(np.ceil(len(y) / max_points)))
    n = len(y) // size * size
    blocks = y[:n].reshape(-1, size) if n else y.reshape(1, -1)
    times = np.arange(len(blocks)) * size / sr
    return times, blocks.min(axis=1), blocks.max(axis=1)


def probability_bars(labels: Sequence[str], probs: np.ndarray, *, k: int | None = None,
                     height: int | None = None) -> go.Figure:
    """Horizontal bars of class probabilities (n_labels,), most likely on top; ``k`` keeps the
    top k (all if None). The winner is highlighted."""
    order = np.argsort(probs)[::-1][: k or len(labels)]
    names = [labels[i] for i in order][::-1]
    values = [float(probs[i]) for i in order][::-1]
    colors = [_MUTED] * (len(values) - 1) + [_ACCENT]
    fig = go.Figure(go.Bar(x=values, y=names, orientation="h", marker_color=colors,
                           text=[f"{v:.0%}" for v in values], textposition="auto",
                           hovertemplate="%{y}: %{x:.1%}<extra></extra>"))
    fig.update_layout(height=height or 60 + 28 * len(values), margin=dict(l=10, r=10, t=10, b=10),
                      xaxis=dict(range=[0, 1], tickformat=".0%", title=None), yaxis=dict(title=None))
    return fig


def segment_timeline(segment_probs: np.ndarray, starts: np.ndarray, labels: Sequence[str], *,
                     segment_seconds: float | None = None) -> go.Figure:
    """Heatmap of per-segment probabilities (n_segments, n_labels) over time: x = segment start
    (s), y = genre, colour = probability."""
    starts = np.asarray(starts, dtype=float)
    if segment_seconds is None:
        segment_seconds = float(np.median(np.diff(starts))) if len(starts) > 1 else 1.0
    centres = starts + segment_seconds / 2
    fig = go.Figure(go.Heatmap(z=np.asarray(segment_probs).T, x=centres, y=list(labels), zmin=0, zmax=1,
                               colorscale="Blues", colorbar=dict(title="p", tickformat=".0%"),
                               hovertemplate="%{x:.1f} s · %{y}: %{z:.0%}<extra></extra>"))
    fig.update_layout(height=80 + 22 * len(labels), margin=dict(l=10, r=10, t=10, b=10),
                      xaxis=dict(title="time (s)"), yaxis=dict(title=None))
    return fig


def _mel_ticks(n_mels: int, sr: int) -> tuple[list[int], list[str]]:
    """Band indices and their centre frequencies as readable tick labels."""
    import librosa

    freqs = librosa.mel_frequencies(n_mels=n_mels + 2, fmax=sr / 2)[1:-1]
    picks = np.linspace(0, n_mels - 1, 6).round().astype(int)
    return picks.tolist(), [f"{freqs[i] / 1000:.1f}k" if freqs[i] >= 1000 else f"{freqs[i]:.0f}" for i in picks]


def mel_spectrogram(log_mel: np.ndarray, *, sr: int, hop_length: int, height: int = 320) -> go.Figure:
    """Log-mel spectrogram (n_mels, n_frames) in dB: x = time (s), y = mel band (Hz ticks)."""
    pooled, factor = pool_columns(log_mel)
    times = np.arange(pooled.shape[1]) * factor * hop_length / sr
    tickvals, ticktext = _mel_ticks(log_mel.shape[0], sr)
    fig = go.Figure(go.Heatmap(z=pooled, x=times, colorscale=_HEAT, colorbar=dict(title="dB"),
                               hovertemplate="%{x:.2f} s · band %{y}: %{z:.0f} dB<extra></extra>"))
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=10), xaxis=dict(title="time (s)"),
                      yaxis=dict(title="Hz", tickvals=tickvals, ticktext=ticktext))
    return fig


FEATURE_ROWS = ("waveform", "mel", "mfcc", "chroma", "tonnetz", "contrast")
_ROW_WEIGHTS = {"waveform": 0.7, "mel": 1.3, "mfcc": 1.0, "chroma": 0.9, "tonnetz": 0.6, "contrast": 0.6}
_PITCHES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]
_TONNETZ = ["5th x", "5th y", "m3 x", "m3 y", "M3 x", "M3 y"]


def feature_panel(y: np.ndarray, sr: int, matrices: Mapping[str, np.ndarray], *, hop_length: int,
                  beat_times: np.ndarray | None = None, titles: Mapping[str, str] | None = None,
                  x_max: float | None = None, height: int = 1100) -> go.Figure:
    """Stacked frame-level features on one shared time axis (s).

    ``y``: mono waveform (n_samples,) at ``sr`` Hz; ``matrices``: 'mel' (dB), 'mfcc', 'chroma',
    'tonnetz', 'contrast', each (rows, n_frames) at ``hop_length``; ``beat_times`` (s) become
    vertical lines across every row; ``x_max`` fixes the time range (to align two panels).
    """
    rows = [r for r in FEATURE_ROWS if r == "waveform" or r in matrices]
    titles = titles or {}
    weights = [_ROW_WEIGHTS[r] for r in rows]
    fig = make_subplots(rows=len(rows), cols=1, shared_xaxes=True, vertical_spacing=0.045,
                        row_heights=[w / sum(weights) for w in weights],
                        subplot_titles=[titles.get(r, r) for r in rows])
    for i, name in enumerate(rows, start=1):
        if name == "waveform":
            t, lo, hi = envelope(y, sr)
            fig.add_trace(go.Scatter(x=t, y=hi, mode="lines", line=dict(width=0.5, color=_MUTED),
                                     hoverinfo="skip", showlegend=False), row=i, col=1)
            fig.add_trace(go.Scatter(x=t, y=lo, mode="lines", line=dict(width=0.5, color=_MUTED), fill="tonexty",
                                     hoverinfo="skip", showlegend=False), row=i, col=1)
            continue
        pooled, factor = pool_columns(matrices[name])
        times = np.arange(pooled.shape[1]) * factor * hop_length / sr
        labels = {"chroma": _PITCHES, "tonnetz": _TONNETZ}.get(name)
        ys = labels[: pooled.shape[0]] if labels else None
        fig.add_trace(go.Heatmap(z=pooled, x=times, y=ys, colorscale=_HEAT if name == "mel" else "Viridis",
                                 showscale=False, hovertemplate="%{x:.2f} s · %{y}: %{z:.2f}<extra></extra>"),
                      row=i, col=1)
        if name == "mel":
            tickvals, ticktext = _mel_ticks(pooled.shape[0], sr)
            fig.update_yaxes(tickvals=tickvals, ticktext=ticktext, row=i, col=1)
    for t in [] if beat_times is None else np.asarray(beat_times, dtype=float):
        fig.add_shape(type="line", x0=t, x1=t, xref="x", y0=0, y1=1, yref="paper",
                      line=dict(color="rgba(228,87,46,0.35)", width=1))
    x_max = x_max if x_max is not None else len(y) / sr
    fig.update_xaxes(range=[0, x_max])
    fig.update_xaxes(title_text="time (s)", row=len(rows), col=1)
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=30, b=10), showlegend=False)
    fig.update_annotations(font_size=12)
    return fig


# --- dataset overview, clip maps and training runs ---------------------------------------------

def genre_colors(labels: Sequence[str]) -> dict[str, str]:
    """A stable colour per genre (sorted names -> Plotly's qualitative palette)."""
    from plotly.colors import qualitative

    palette = qualitative.Plotly + qualitative.Dark24
    return {lab: palette[i % len(palette)] for i, lab in enumerate(sorted(set(labels)))}


def genre_counts_bar(counts: Mapping[str, int]) -> go.Figure:
    """Bars of clips per genre (``counts``: genre -> number of clips), in genre order."""
    names = sorted(counts)
    colors = genre_colors(names)
    fig = go.Figure(go.Bar(x=names, y=[int(counts[n]) for n in names], marker_color=[colors[n] for n in names],
                           text=[int(counts[n]) for n in names], textposition="auto",
                           hovertemplate="%{x}: %{y} clips<extra></extra>"))
    fig.update_layout(height=300, margin=dict(l=10, r=10, t=10, b=10), yaxis=dict(title="clips"),
                      xaxis=dict(title=None))
    return fig


def durations_histogram(seconds: Sequence[float], genres: Sequence[str]) -> go.Figure:
    """Stacked histogram of clip durations (s), coloured by genre."""
    seconds, genres = np.asarray(seconds, dtype=float), np.asarray(genres, dtype=object)
    colors = genre_colors(genres)
    fig = go.Figure([go.Histogram(x=seconds[genres == g], name=str(g), marker_color=c,
                                  hovertemplate="%{x} s: %{y} clips<extra>" + str(g) + "</extra>")
                     for g, c in colors.items()])
    fig.update_layout(barmode="stack", height=300, margin=dict(l=10, r=10, t=10, b=10),
                      xaxis=dict(title="duration (s)"), yaxis=dict(title="clips"))
    return fig


def feature_by_genre(values: Sequence[float], genres: Sequence[str], *, feature: str, kind: str = "box",
                     hover: Sequence[str] | None = None) -> go.Figure:
    """Distribution of one per-clip feature value per genre: ``kind`` 'box' or 'violin', every
    clip drawn as a point (``hover``: text per clip, e.g. its id)."""
    values, genres = np.asarray(values, dtype=float), np.asarray(genres, dtype=object)
    hover = np.asarray(hover if hover is not None else [""] * len(values), dtype=object)
    traces = []
    for g, color in genre_colors(genres).items():
        mask = genres == g
        common = dict(y=values[mask], name=str(g), marker_color=color, text=hover[mask],
                      hovertemplate="%{text}<br>%{y:.4g}<extra>" + str(g) + "</extra>")
        traces.append(go.Violin(**common, points="all", box_visible=True, meanline_visible=True) if kind == "violin"
                      else go.Box(**common, boxpoints="all", jitter=0.4, pointpos=0))
    fig = go.Figure(traces)
    fig.update_layout(height=380, margin=dict(l=10, r=10, t=10, b=10), showlegend=False,
                      yaxis=dict(title=feature), xaxis=dict(title=None))
    return fig


def clip_map(xy: np.ndarray, genres: Sequence[str], *, clip_ids: Sequence[str],
             artists: Sequence[str | None], titles: Sequence[str | None], method: str = "pca") -> go.Figure:
    """Scatter of clips in 2-D (``xy``: (n, 2)), one trace per genre. Each point's
    ``customdata`` is ``[row position in the inputs, clip id, artist, title]``; hovering shows
    the last three."""
    xy, genres = np.asarray(xy, dtype=float), np.asarray(genres, dtype=object)
    custom = np.array([[i, c, a or "", t or ""] for i, (c, a, t) in enumerate(zip(clip_ids, artists, titles))],
                      dtype=object).reshape(len(xy), 4)
    axis = {"pca": "PC", "tsne": "t-SNE "}.get(method, "")
    fig = go.Figure([go.Scatter(x=xy[genres == g, 0], y=xy[genres == g, 1], mode="markers", name=str(g),
                                marker=dict(color=color, size=8, line=dict(width=0.5, color="white")),
                                customdata=custom[genres == g],
                                hovertemplate="<b>%{customdata[1]}</b><br>%{customdata[2]}<br>%{customdata[3]}"
                                              "<extra>" + str(g) + "</extra>")
                     for g, color in genre_colors(genres).items()])
    fig.update_layout(height=520, margin=dict(l=10, r=10, t=10, b=10), legend=dict(title="genre"),
                      xaxis=dict(title=f"{axis}1", zeroline=False), yaxis=dict(title=f"{axis}2", zeroline=False),
                      clickmode="event+select", dragmode="pan")
    return fig


def best_epoch(history: Sequence[Mapping[str, float]]) -> int | None:
    """The epoch with the lowest validation loss (the one early stopping keeps), or None
    without validation losses."""
    scored = [(h["val_loss"], h.get("epoch", i + 1)) for i, h in enumerate(history) if h.get("val_loss") is not None]
    return int(min(scored)[1]) if scored else None


def training_curves(history: Sequence[Mapping[str, float]]) -> go.Figure:
    """Loss and accuracy per epoch, training (solid) vs validation (dashed), side by side, with a
    legend; the x-axis spans the epochs run so far, and the best epoch (lowest validation loss,
    whose weights are kept) is marked on both panels. ``history``: one mapping per epoch with
    ``epoch`` and any of ``loss``, ``val_loss``, ``accuracy``, ``val_accuracy`` (accuracy in [0, 1])."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Loss (lower is better)", "Accuracy (segments)"),
                        horizontal_spacing=0.1)
    epochs = [h.get("epoch", i + 1) for i, h in enumerate(history)]
    marker = 4 if len(epochs) > 1 else 10  # a single point must be visible
    for col, metric in ((1, "loss"), (2, "accuracy")):
        for prefix, name, dash, color in (("", "training", "solid", _MUTED), ("val_", "validation", "dash", _ACCENT)):
            fig.add_trace(go.Scatter(x=epochs, y=[h.get(prefix + metric) for h in history], mode="lines+markers",
                                     name=name, legendgroup=name, showlegend=col == 1,
                                     line=dict(dash=dash, color=color), marker=dict(size=marker),
                                     hovertemplate=f"epoch %{{x}} · {name} {metric}: %{{y:.3f}}<extra></extra>"),
                          row=1, col=col)
    best = best_epoch(history) if len(epochs) > 1 else None
    if best is not None:
        entry = next(h for i, h in enumerate(history) if h.get("epoch", i + 1) == best)
        for col, metric in ((1, "val_loss"), (2, "val_accuracy")):
            fig.add_vline(x=best, line=dict(color=_ACCENT, width=1, dash="dot"), row=1, col=col)
            if entry.get(metric) is not None:
                fig.add_trace(go.Scatter(x=[best], y=[entry[metric]], mode="markers", name=f"best epoch ({best})",
                                         legendgroup="best", showlegend=col == 1,
                                         marker=dict(symbol="star", size=13, color=_ACCENT,
                                                     line=dict(width=1, color="white")),
                                         hovertemplate=f"best epoch {best} (lowest validation loss; its weights "
                                                       "are kept)<extra></extra>"),
                              row=1, col=col)
    last = max(epochs, default=1)
    fig.update_xaxes(title_text="epoch", range=[0.5, last + 0.5], dtick=1 if last <= 12 else None, tickformat="d")
    fig.update_yaxes(range=[0, 1], tickformat=".0%", row=1, col=2)
    fig.update_layout(height=360, margin=dict(l=10, r=10, t=30, b=10), showlegend=True,
                      legend=dict(orientation="h", yanchor="bottom", y=-0.35, x=0))
    return fig


def confusion_heatmap(confusion: Sequence[Sequence[int]], labels: Sequence[str]) -> go.Figure:
    """Confusion matrix (rows: true genre, columns: predicted) as a heatmap with counts; colour
    is the share of each true genre's clips so rare genres read as clearly as common ones."""
    counts = np.asarray(confusion, dtype=float)
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig = go.Figure(go.Heatmap(z=share, x=list(labels), y=list(labels), zmin=0, zmax=1, colorscale="Blues",
                               text=counts.astype(int), texttemplate="%{text}",
                               colorbar=dict(title="share", tickformat=".0%"),
                               hovertemplate="true %{y} → predicted %{x}: %{text} clips (%{z:.0%})<extra></extra>"))
    fig.update_layout(height=120 + 34 * len(labels), margin=dict(l=10, r=10, t=10, b=10),
                      xaxis=dict(title="predicted"), yaxis=dict(title="true", autorange="reversed"))
    return fig
