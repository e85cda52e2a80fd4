"""Feature scaling fitted on the train split, applied per batch, saved in the checkpoint."""

from dataclasses import dataclass

import torch

from litlab.data_spec import InputKind
from litlab.errors import UserError

SCALINGS = ("standard", "minmax", "none")
CHUNK = 1 << 22  # values measured at once by Moments.of: 32 MB as float64


@dataclass(frozen=True)
class Moments:
    """What every scaling needs of some rows, per feature (tables) or per channel (images): the count,
    mean, sum of squared deviations from the mean (m2), min and max, in float64. Images decoded one
    at a time (the streamed path) give one per image, and `pooled` combines them into the split's
    exactly as `of` measures a split held in memory. (F,) or (C,) tensors."""

    count: int
    mean: torch.Tensor
    m2: torch.Tensor
    low: torch.Tensor
    high: torch.Tensor

    @classmethod
    def of(cls, x: torch.Tensor, kind: InputKind) -> "Moments":
        """x: (N, F) features or (N, C, H, W) images, as `kind` says; measured CHUNK values at a time,
        so that the float64 copies stay small whatever the size of x."""
        rows = max(1, CHUNK // max(1, x[0].numel()))
        parts = [cls.of_chunk(chunk) for chunk in x.split(rows)]
        total = parts[0]
        for part in parts[1:]:
            total = total + part
        return total

    @classmethod
    def of_chunk(cls, x: torch.Tensor) -> "Moments":
        values = x.movedim(1, 0).flatten(1).double()  # (F or C, values): one float64 copy, reused in place
        mean, low, high = values.mean(1), values.amin(1), values.amax(1)
        m2 = values.sub_(mean[:, None]).square_().sum(1)
        return cls(values.shape[1], mean, m2, low, high)

    def __add__(self, other: "Moments") -> "Moments":
        """The moments of both sets of values together (Chan et al.'s parallel update)."""
        n = self.count + other.count
        delta = other.mean - self.mean
        return Moments(
            n,
            self.mean + delta * other.count / n,
            self.m2 + other.m2 + delta**2 * self.count * other.count / n,
            torch.minimum(self.low, other.low),
            torch.maximum(self.high, other.high),
        )

    @classmethod
    def pooled(cls, count: int, stats: torch.Tensor) -> "Moments":
        """The moments of N images together, given each one's (N, C, 4) statistics over `count` pixels:
        mean, m2, min and max per channel (class_folders.pixel_stats)."""
        mean, m2, low, high = stats.double().unbind(-1)  # each (N, C)
        pooled_mean = mean.mean(0)
        between = count * ((mean - pooled_mean) ** 2).sum(0)  # Chan et al.'s term for equal-sized parts
        return cls(count * len(mean), pooled_mean, m2.sum(0) + between, low.amin(0), high.amax(0))


class Scaler:
    """Affine feature scaling `(x - shift) / scale` with statistics from the train split only.

    Tabular features get one statistic per column; images one per channel, so that a
    pixel that is always 0 in the train split (the border of a digit) does not divide by zero.
    """

    def __init__(self, method: str) -> None:
        if method not in SCALINGS:
            raise UserError(f"data.scaling={method!r} is not a scaling; valid: {', '.join(SCALINGS)}")
        self.method = method
        self.shift: torch.Tensor | None = None
        self.scale: torch.Tensor | None = None

    @property
    def fitted(self) -> bool:
        return self.shift is not None

    def fit(self, x: torch.Tensor, kind: InputKind) -> "Scaler":
        """x: (N, F) features or (N, C, H, W) images, as `kind` says."""
        return self.fit_moments(Moments.of(x, kind), kind)

    def fit_moments(self, m: Moments, kind: InputKind) -> "Scaler":
        """Fitted to the train split's moments `m`."""
        if self.method == "standard":
            shift, scale = m.mean, (m.m2 / (m.count - 1)).sqrt()  # the sample std, as torch.std
        elif self.method == "minmax":
            shift, scale = m.low, m.high - m.low
        else:
            shift, scale = torch.zeros(1), torch.ones(1)
        # A constant feature carries no information; leave it centred instead of dividing by 0.
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        if kind is InputKind.IMAGE and self.method != "none":  # (C, 1, 1): broadcast over (B, C, H, W)
            shift, scale = shift[:, None, None], scale[:, None, None]
        self.shift, self.scale = shift.float(), scale.float()
        return self

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.shift is None or self.scale is None:
            raise RuntimeError("Scaler used before fit() or load_state_dict()")
        if self.shift.device != x.device:
            self.shift, self.scale = self.shift.to(x.device), self.scale.to(x.device)
        return (x.float() - self.shift) / self.scale

    def pixel_unit(self, channels: int, pixel_max: float) -> list[list[float]]:
        """Images: per channel, the gain and bias (2, C) that take this scaler's output back to
        pixels in [0, 1]: `x * gain + bias == raw / pixel_max`. What weights trained on [0, 1]
        pixels (torchvision's) need to undo the data's own scaling."""
        if self.shift is None or self.scale is None:
            raise RuntimeError("Scaler.pixel_unit before fit() or load_state_dict()")
        shift, scale = (t.flatten().expand(channels).double() for t in (self.shift, self.scale))
        return [(scale / pixel_max).tolist(), (shift / pixel_max).tolist()]

    def state_dict(self) -> dict[str, torch.Tensor | str | None]:
        return {"method": self.method, "shift": self.shift, "scale": self.scale}

    def holds(self, state: dict) -> bool:
        """Whether this scaler is fitted and has the method and statistics of `state` (a state_dict)."""
        if self.shift is None or self.scale is None or state["method"] != self.method:
            return False
        return all(
            other is not None and torch.equal(mine.cpu(), other.cpu())
            for mine, other in ((self.shift, state["shift"]), (self.scale, state["scale"]))
        )

    def load_state_dict(self, state: dict) -> None:
        self.method, self.shift, self.scale = state["method"], state["shift"], state["scale"]
