"""Plotly figure builders: plain data in, ``go.Figure`` out (no Streamlit, no I/O).

Times are in seconds, probabilities in [0, 1], spectrograms in dB. Large matrices are pooled
along time to at most ``max_columns`` columns so a figure stays light in the browser.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

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
                     segment_seconds: float | None = None, silent: np.ndarray | None = None,
                     trimmed: tuple[float, float] = (0.0, 0.0), seconds: float | None = None) -> go.Figure:
    """Heatmap of per-segment probabilities (n_segments, n_labels) over time: x = segment start
    (s), y = genre, colour = probability. Segments flagged in ``silent`` (n_segments,) bool are
    left blank and shaded grey, as is ``trimmed`` (seconds of silence left out at the start and end
    of a clip of ``seconds``)."""
    starts = np.asarray(starts, dtype=float)
    if segment_seconds is None:
        segment_seconds = float(np.median(np.diff(starts))) if len(starts) > 1 else 1.0
    centres = starts + segment_seconds / 2
    z = np.asarray(segment_probs, dtype=float).T
    silent = np.zeros(len(starts), dtype=bool) if silent is None else np.asarray(silent, dtype=bool)
    z[:, silent] = np.nan
    fig = go.Figure(go.Heatmap(z=z, x=centres, y=list(labels), zmin=0, zmax=1,
                               colorscale="Blues", colorbar=dict(title="p", tickformat=".0%"),
                               hovertemplate="%{x:.1f} s · %{y}: %{z:.0%}<extra></extra>"))
    stretches = [(0.0, trimmed[0]), ((seconds or 0.0) - trimmed[1], seconds or 0.0)]
    edges = np.diff(np.concatenate([[0], silent.astype(int), [0]]))
    stretches += [(float(starts[a]), float(starts[b - 1] + segment_seconds))
                  for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1))]
    for x0, x1 in stretches:
        if x1 > x0:
            fig.add_vrect(x0=x0, x1=x1, fillcolor="#bbbbbb", opacity=0.5, line_width=0,
                          annotation_text="silence", annotation_position="top left")
    fig.update_layout(height=80 + 22 * len(labels), margin=dict(l=10, r=10, t=10, b=10),
                      xaxis=dict(title="time (s)"), yaxis=dict(title=None))
    if len(starts) > LONG_TIMELINE_SEGMENTS:  # a slider under the chart to zoom into a stretch
        fig.update_layout(height=fig.layout.height + 60, xaxis=dict(title="time (s)", rangeslider=dict(visible=True)))
    return fig


LONG_TIMELINE_SEGMENTS = 40
"""Clips of more segments (~2 min) get a zoom slider and a binned summary (:func:`binned_timeline`)."""


def time_bins(seconds: float, *, target_bins: int = 24) -> float:
    """A bin length (s) of 15 s, 30 s, 1, 2, 5 or 10 min that cuts ``seconds`` into about
    ``target_bins`` bins or fewer."""
    return next((b for b in (15, 30, 60, 120, 300, 600) if seconds / b <= target_bins), 600.0)


def _clock(t: float) -> str:
    return f"{int(t // 60)}:{int(t % 60):02d}"


def binned_timeline(segment_probs: np.ndarray, starts: np.ndarray, labels: Sequence[str], *,
                    silent: np.ndarray | None = None, bin_seconds: float | None = None) -> go.Figure:
    """The genre of each stretch of a long clip: bins of ``bin_seconds`` (default
    :func:`time_bins`), each a bar coloured by the genre most of its sounding segments voted,
    as opaque as their mean probability of it; hover says the votes. Silent-only bins are grey.
    ``segment_probs`` (n_segments, n_labels), ``starts`` (n_segments,) in s."""
    probs, starts = np.asarray(segment_probs, dtype=float), np.asarray(starts, dtype=float)
    silent = np.zeros(len(starts), dtype=bool) if silent is None else np.asarray(silent, dtype=bool)
    bin_seconds = bin_seconds or time_bins(float(starts[-1]) if len(starts) else 0.0)
    which = (starts // bin_seconds).astype(int)
    colors = genre_colors(labels)
    fig = go.Figure()
    for b in np.unique(which):
        voting = (which == b) & ~silent
        x, hover = (b + 0.5) * bin_seconds, f"{_clock(b * bin_seconds)}–{_clock((b + 1) * bin_seconds)}"
        if not voting.any():
            fig.add_trace(go.Bar(x=[x], y=[1], width=bin_seconds * 0.95, marker_color="#bbbbbb", showlegend=False,
                                 hovertemplate=f"{hover} · silence<extra></extra>"))
            continue
        votes = np.bincount(probs[voting].argmax(axis=1), minlength=len(labels))
        top = int(votes.argmax())
        confidence = float(probs[voting, top].mean())
        fig.add_trace(go.Bar(x=[x], y=[1], width=bin_seconds * 0.95, marker_color=colors[labels[top]],
                             marker_opacity=0.25 + 0.75 * confidence, name=labels[top], legendgroup=labels[top],
                             showlegend=labels[top] not in {t.name for t in fig.data},
                             hovertemplate=(f"{hover} · {labels[top]} ({votes[top]} of {int(voting.sum())} segments, "
                                            f"mean p {confidence:.0%})<extra></extra>")))
    fig.update_layout(height=140, margin=dict(l=10, r=10, t=10, b=10), bargap=0, barmode="overlay",
                      xaxis=dict(title=f"time (s) · bins of {bin_seconds:g} s"), yaxis=dict(visible=False),
                      legend=dict(orientation="h", y=1.25))
    return fig


def _hz(f: float) -> str:
    """'86 Hz', '1.2 kHz', '11 kHz'."""
    if f < 1000:
        return f"{f:.0f} Hz"
    return f"{f / 1000:.1f} kHz" if f < 10_000 else f"{f / 1000:.0f} kHz"


def mel_band_names(n_mels: int, sr: int) -> list[str]:
    """Centre frequency of each band of librosa's mel filter bank (0 Hz to sr/2, Slaney) as a
    unique name ('86 Hz', '1234 Hz'): the y categories of mel spectrograms, shown on hover."""
    import librosa

    freqs = librosa.mel_frequencies(n_mels=n_mels + 2, fmax=sr / 2)[1:-1]
    names = [f"{f:.0f} Hz" for f in freqs]
    return names if len(set(names)) == len(names) else [f"{f:.2f} Hz" for f in freqs]


def contrast_band_names(n_rows: int, sr: int, *, fmin: float = 200.0) -> list[str]:
    """Octave bands of spectral contrast (librosa's: below ``fmin``, then octaves up to sr/2)."""
    edges = [0.0, *(fmin * 2.0 ** np.arange(n_rows - 1)), sr / 2]
    return [f"{_hz(lo).replace(' Hz', '').replace(' kHz', 'k')}–{_hz(hi)}" if lo else f"< {_hz(hi)}"
            for lo, hi in zip(edges[:-1], edges[1:])]


def _category_ticks(names: Sequence[str], n: int = 6, *, hz: bool = False) -> dict:
    """About ``n`` evenly spaced ticks on a categorical axis of ``names`` (``hz``: the names are
    'NNN Hz', shown shorter: '86', '1.2k')."""
    picks = sorted(set(np.linspace(0, len(names) - 1, n).round().astype(int).tolist()))
    text = [names[i] for i in picks]
    if hz:
        text = [_hz(float(t.split()[0])).replace(" kHz", "k").replace(" Hz", "") for t in text]
    return dict(tickvals=[names[i] for i in picks], ticktext=text)


def mel_spectrogram(log_mel: np.ndarray, *, sr: int, hop_length: int, height: int = 320) -> go.Figure:
    """Log-mel spectrogram (n_mels, n_frames) in dB: x = time (s), y = mel band named by its
    centre frequency (hover shows Hz), colour = dB."""
    pooled, factor = pool_columns(log_mel)
    times = np.arange(pooled.shape[1]) * factor * hop_length / sr
    names = mel_band_names(log_mel.shape[0], sr)
    fig = go.Figure(go.Heatmap(z=pooled, x=times, y=names, colorscale=_HEAT, colorbar=dict(title="dB"),
                               hovertemplate="%{x:.2f} s · %{y}: %{z:.0f} dB<extra></extra>"))
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=10), xaxis=dict(title="time (s)"),
                      yaxis=dict(title="Hz", type="category", **_category_ticks(names, hz=True)))
    return fig


FEATURE_ROWS = ("waveform", "mel", "mfcc", "chroma", "tonnetz", "contrast")
ARRANGEMENTS = ("stacked", "columns")
_ROW_PIXELS = {"waveform": 110, "mel": 210, "mfcc": 150, "chroma": 150, "tonnetz": 110, "contrast": 120}
_GAP_PIXELS = 42
_HEADER_PIXELS = 26
"""Height of the clip names above the columns (side by side)."""
_PITCHES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]
_TONNETZ = ["fifth x", "fifth y", "minor 3rd x", "minor 3rd y", "major 3rd x", "major 3rd y"]
"""librosa.feature.tonnetz's six dimensions, in its order."""
_BEAT = "#ff7f0e"
"""Beat lines: plotly's orange, opaque, so they stay orange (not pink) over white and dark."""
_Y_TITLES = {"waveform": "amplitude", "mel": "Hz", "mfcc": "MFCC index", "chroma": "pitch class",
             "tonnetz": "dimension", "contrast": "band (Hz)"}
_COLOUR_TITLES = {"mel": "dB", "mfcc": "sd", "chroma": "of max", "tonnetz": "coord.", "contrast": "sd"}
_HOVER = {
    "mel": "%{x:.2f} s · %{y}: %{z:.0f} dB",
    "mfcc": "%{x:.2f} s · MFCC %{y}: %{customdata:.1f} (%{z:+.1f} sd from its mean)",
    "chroma": "%{x:.2f} s · %{y}: %{z:.2f} of the loudest pitch class",
    "tonnetz": "%{x:.2f} s · %{y}: %{z:.2f}",
    "contrast": "%{x:.2f} s · %{y}: %{customdata:.1f} dB peak over valley (%{z:+.1f} sd from its mean)",
}
ROW_STANDARDISED = ("mfcc", "contrast")
"""Views whose rows differ in range by far (MFCC 0 and 1 dwarf the rest; the top contrast band
sits far above the others): each row is coloured by its deviation from its own mean over the
clips shown, in standard deviations (hover gives the raw value), so every row shows its changes."""


class PanelClip(NamedTuple):
    """One clip of :func:`feature_panel`: mono waveform ``y`` (n_samples,) at ``sr`` Hz, its
    frame-level ``matrices`` ('mel' in dB, 'mfcc', 'chroma' 0-1, 'tonnetz', 'contrast' in dB;
    each (rows, n_frames) at ``hop_length`` samples), beat times (s) and a short ``name`` ('A')."""

    y: np.ndarray
    sr: int
    matrices: Mapping[str, np.ndarray]
    hop_length: int
    beat_times: np.ndarray
    name: str = ""


def _y_categories(view: str, rows: int, sr: int) -> list[str] | None:
    """Names of a view's rows (its y categories), or None for a numeric axis (MFCC index)."""
    if view == "mel":
        return mel_band_names(rows, sr)
    if view == "contrast":
        return contrast_band_names(rows, sr)
    return {"chroma": _PITCHES, "tonnetz": _TONNETZ}.get(view, [])[:rows] or None


def _colour_range(view: str, matrices: Sequence[np.ndarray]) -> dict:
    """One colour scale for a view across clips, so A and B read alike: dB views span the top
    80 dB, MFCC and contrast ±3 standard deviations of each row (:data:`ROW_STANDARDISED`),
    chroma 0-1, tonnetz symmetric around 0."""
    values = np.concatenate([np.ravel(m) for m in matrices])
    if view == "chroma":
        return dict(zmin=0.0, zmax=1.0, colorscale="Viridis")
    if view == "tonnetz":
        top = float(np.percentile(np.abs(values), 99)) or 1.0
        return dict(zmin=-top, zmax=top, zmid=0.0, colorscale="RdBu_r")
    if view == "mel":
        top = float(values.max())
        return dict(zmin=max(float(values.min()), top - 80.0), zmax=top, colorscale=_HEAT)
    if view in ROW_STANDARDISED:
        return dict(zmin=-3.0, zmax=3.0, zmid=0.0, colorscale="RdBu_r")
    low, high = np.percentile(values, [1, 99])
    return dict(zmin=float(low), zmax=float(high) if high > low else float(low) + 1.0, colorscale="Viridis")


def feature_panel(clips: Sequence[PanelClip], *, arrangement: str = "stacked",
                  titles: Mapping[str, str] | None = None) -> go.Figure:
    """Waveform, mel spectrogram, MFCC, chroma, tonnetz and spectral contrast of one or more
    clips in one figure on one time axis (s; zooming one row zooms all).

    ``arrangement`` 'stacked' puts each clip's row of a view under the previous clip's (full
    width each, labelled with the clip's ``name``); 'columns' puts the clips side by side. Each
    view has its title (``titles``), y units (Hz, pitch class, MFCC index, tonnetz dimension),
    hover in those units and one colour bar shared by the clips; each clip's beats are orange
    lines across its rows. Rows of different clips always line up.
    """
    if arrangement not in ARRANGEMENTS:
        raise ValueError(f"unknown arrangement {arrangement!r}; use one of {ARRANGEMENTS}")
    if not clips:
        raise ValueError("feature_panel needs at least one clip")
    titles = titles or {}
    views = [v for v in FEATURE_ROWS if v == "waveform" or all(v in c.matrices for c in clips)]
    n = len(clips)
    stacked = arrangement == "stacked"
    shape = (len(views) * n, 1) if stacked else (len(views), n)
    cell = (lambda v, j: (v * n + j + 1, 1)) if stacked else (lambda v, j: (v + 1, j + 1))
    pixels = [_ROW_PIXELS[v] for v in views for _ in range(n if stacked else 1)]
    plot_height = sum(pixels) + _GAP_PIXELS * (len(pixels) - 1)
    fig = make_subplots(rows=shape[0], cols=shape[1], shared_xaxes="all", row_heights=pixels,
                        vertical_spacing=_GAP_PIXELS / plot_height, horizontal_spacing=0.05)
    x_max = max(len(c.y) / c.sr for c in clips)
    amplitude = max(float(np.max(np.abs(c.y))) if len(c.y) else 0.0 for c in clips) or 1.0
    beats: list[dict] = []  # added at once: fig.add_shape per line takes milliseconds each
    for v, view in enumerate(views):
        top = fig.get_subplot(cell(v, 0)[0], 1).yaxis.domain[1]
        bottom = fig.get_subplot(cell(v, n - 1)[0], 1).yaxis.domain[0]
        fig.add_annotation(text=titles.get(view, view), x=0.5, xref="paper", y=top, yref="paper", yanchor="bottom",
                           showarrow=False, font_size=12)
        pooled = [pool_columns(c.matrices[view]) if view != "waveform" else (None, 1) for c in clips]
        raw = [None] * n
        if view in ROW_STANDARDISED:
            joined = np.concatenate([p for p, _ in pooled], axis=1)
            mean, sd = joined.mean(axis=1, keepdims=True), joined.std(axis=1, keepdims=True)
            raw = [p for p, _ in pooled]
            pooled = [((p - mean) / np.where(sd > 0, sd, 1.0), f) for p, f in pooled]
        colours = {}
        if view != "waveform":
            colours = {**_colour_range(view, [p for p, _ in pooled]),
                       "colorbar": dict(title=dict(text=_COLOUR_TITLES[view], side="right"), x=1.01, xanchor="left",
                                        y=(top + bottom) / 2, yanchor="middle", len=top - bottom, lenmode="fraction",
                                        thickness=12)}
        for j, (clip, (matrix, factor), values) in enumerate(zip(clips, pooled, raw)):
            row, col = cell(v, j)
            if view == "waveform":
                t, lo, hi = envelope(clip.y, clip.sr)
                for edge, fill in ((hi, None), (lo, "tonexty")):
                    fig.add_trace(go.Scatter(x=t, y=edge, mode="lines", line=dict(width=0.5, color=_MUTED), fill=fill,
                                             hoverinfo="skip", showlegend=False), row=row, col=col)
                fig.update_yaxes(range=[-amplitude * 1.05, amplitude * 1.05], row=row, col=col)
            else:
                names = _y_categories(view, matrix.shape[0], clip.sr)
                times = np.arange(matrix.shape[1]) * factor * clip.hop_length / clip.sr
                fig.add_trace(go.Heatmap(z=matrix, x=times, y=names, **colours, showscale=j == n - 1, customdata=values,
                                         hovertemplate=_HOVER[view] + "<extra>" + clip.name + "</extra>"),
                              row=row, col=col)
                if names:
                    ticks = _category_ticks(names, 6, hz=True) if view == "mel" else _category_ticks(names, 12)
                    fig.update_yaxes(type="category", **ticks, row=row, col=col)
            y_title = _Y_TITLES[view] if col == 1 else None
            if stacked and n > 1 and clip.name:
                y_title = f"<b>{clip.name}</b> · {_Y_TITLES[view]}"
            fig.update_yaxes(title_text=y_title, title_font_size=11, showticklabels=col == 1 or stacked,
                             row=row, col=col)
            yaxis = fig.get_subplot(row, col).yaxis.plotly_name.replace("axis", "")
            xaxis = fig.get_subplot(row, col).xaxis.plotly_name.replace("axis", "")
            beats += [dict(type="line", x0=t, x1=t, xref=xaxis, y0=0, y1=1, yref=f"{yaxis} domain",
                           line=dict(color=_BEAT, width=1), opacity=0.75, layer="above")
                      for t in np.asarray(clip.beat_times, dtype=float).tolist()]
    if not stacked and n > 1:
        for j, clip in enumerate(clips):
            x_domain = fig.get_subplot(1, j + 1).xaxis.domain
            fig.add_annotation(text=f"<b>{clip.name}</b>", x=sum(x_domain) / 2, xref="paper", y=1, yref="paper",
                               yanchor="bottom", yshift=_HEADER_PIXELS, showarrow=False, font_size=14)
    fig.update_layout(shapes=beats)
    fig.update_xaxes(range=[0, x_max])
    for col in range(1, shape[1] + 1):
        fig.update_xaxes(title_text="time (s)", row=shape[0], col=col)
    top_margin = 30 + (_HEADER_PIXELS + 20 if not stacked and n > 1 else 0)
    fig.update_layout(height=plot_height + top_margin + 50, margin=dict(l=10, r=10, t=top_margin, b=50),
                      showlegend=False)
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
    from genre.features import feature_label

    fig.update_layout(height=380, margin=dict(l=10, r=10, t=10, b=10), showlegend=False,
                      yaxis=dict(title=feature_label(feature)), xaxis=dict(title=None))
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
