"""What a learning-rate range test's curve suggests, and its picture.

The range test (litlab.run.lr_find) records the loss at learning rates spaced evenly in
log10(lr). Everything here works against log10(lr), the axis the rates were sampled on and
the one the picture shows: a derivative against the rate itself is dominated by the tiny
spacing at the low end, where noise then decides the answer (Lightning issue #21141).
"""

from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure
from scipy.signal import savgol_filter

SUGGESTIONS = ("valley", "steep", "minimum")


@dataclass(frozen=True)
class Suggestions:
    """Rates read off one curve: `valley`, the middle (in log10(lr)) of the stretch where the
    loss falls steeply (at least a tenth as fast as at its steepest); `steep`, where the loss falls
    fastest per decade of rate;
    `minimum`, a tenth of the rate at the lowest loss (its neighbour already diverges)."""

    valley: float
    steep: float
    minimum: float

    def by_name(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in SUGGESTIONS}


def suggest(lrs: np.ndarray, loss: np.ndarray, window_fraction: float = 0.2) -> tuple[Suggestions, np.ndarray]:
    """The suggestions for rates `lrs` (N,) and each step's loss (N,), and the smoothed loss
    they were read from (N,; NaN where the curve was cut). Points with a non-finite loss, and
    those after the loss has risen above where it started (diverged), are left out.

    Smoothing: a Savitzky-Golay filter (a quadratic fitted over a window of `window_fraction`
    of the points around each one), which follows a fall without the lag of an exponential
    moving average and keeps its slope at the ends of the curve; the slope comes from the same
    fitted quadratics, against log10(lr)."""
    kept = before_divergence(np.asarray(loss, dtype=float))
    if kept.sum() < 5:
        raise ValueError(f"the range test recorded {kept.sum()} usable losses; at least 5 are needed")
    lrs, loss = np.asarray(lrs, dtype=float), np.asarray(loss, dtype=float)
    n = int(kept.sum())
    window = min(max(5, int(n * window_fraction) | 1), n - (1 - n % 2))  # odd, <= n
    log_lr = np.log10(lrs[kept])
    step = float(np.mean(np.diff(log_lr)))  # the range test spaces the rates evenly in log10
    smooth = savgol_filter(loss[kept], window, polyorder=2, mode="interp")
    slope = savgol_filter(loss[kept], window, polyorder=2, deriv=1, delta=step, mode="interp")  # d loss / d log10(lr)
    lowest = int(np.argmin(smooth))
    steep = int(np.argmin(slope[: lowest + 1]))
    start, end = falling_stretch(slope, steep)
    valley = 10 ** ((log_lr[start] + log_lr[end]) / 2)
    rates = lrs[kept]
    suggestions = Suggestions(valley=float(valley), steep=float(rates[steep]), minimum=float(rates[lowest] / 10))
    return suggestions, np.where(kept, np.interp(np.log10(lrs), log_lr, smooth), np.nan)


def before_divergence(loss: np.ndarray) -> np.ndarray:
    """A mask (N,) of the finite points up to where the loss, having fallen, rises above its
    starting level (the median of the first tenth of the points) for good: past there it diverges."""
    finite = np.isfinite(loss)
    level = float(np.median(loss[finite][: max(3, len(loss) // 10)])) if finite.any() else np.inf
    lowest = int(np.nanargmin(np.where(finite, loss, np.nan))) if finite.any() else 0
    above = np.flatnonzero((~finite | (loss > level)) & (np.arange(len(loss)) > lowest))
    cut = int(above[0]) if len(above) else len(loss)
    return finite & (np.arange(len(loss)) < cut)


def falling_stretch(slope: np.ndarray, steepest: int, share: float = 0.1) -> tuple[int, int]:
    """First and last index of the stretch around `steepest` where the loss falls at least
    `share` as fast as there: the valley the curve descends through, without the flat start."""
    falling = slope <= share * slope[steepest]
    start = end = steepest
    while start > 0 and falling[start - 1]:
        start -= 1
    while end < len(slope) - 1 and falling[end + 1]:
        end += 1
    return start, end


def figure(lrs: np.ndarray, loss: np.ndarray, smooth: np.ndarray, suggestions: Suggestions, chosen: str) -> Figure:
    """Loss against the rate (log axis): as recorded, smoothed, and each suggestion marked."""
    fig = Figure(figsize=(6.4, 4.2), dpi=100)
    ax = fig.add_subplot()
    finite, kept = np.isfinite(loss), np.isfinite(smooth)
    ax.plot(lrs[finite], loss[finite], color="0.75", lw=1, label="loss at each step")
    ax.plot(lrs[kept], smooth[kept], color="C0", lw=2, label="smoothed (up to divergence)")
    for i, (name, lr) in enumerate(suggestions.by_name().items()):
        y = np.interp(np.log10(lr), np.log10(lrs[kept]), smooth[kept])
        marker = "o" if name != chosen else "*"
        ax.plot([lr], [y], marker, ms=12 if name == chosen else 8, color=f"C{i + 1}", label=f"{name}: {lr:.2g}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    low, high = float(np.nanmin(smooth)), float(np.nanmax(smooth))
    ax.set_ylim(low - 0.1 * (high - low), high + 0.25 * (high - low))  # a diverged end would flatten the rest
    ax.set_title(f"learning-rate range test: {chosen} {suggestions.by_name()[chosen]:.2g}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
