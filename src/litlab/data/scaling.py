"""Feature scaling fitted on the train split, applied per batch, saved in the checkpoint."""

import torch

from litlab.data.spec import InputKind
from litlab.errors import UserError

SCALINGS = ("standard", "minmax", "none")


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
        x = x.double()
        dims = [0] if kind is InputKind.TABLE else [0, 2, 3]  # all but the feature/channel dim
        if self.method == "standard":
            shift, scale = x.mean(dims, keepdim=True), x.std(dims, keepdim=True)
        elif self.method == "minmax":
            shift = x.amin(dims, keepdim=True)
            scale = x.amax(dims, keepdim=True) - shift
        else:
            shift, scale = torch.zeros(1), torch.ones(1)
        # A constant feature carries no information; leave it centred instead of dividing by 0.
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        self.shift, self.scale = shift[0].float(), scale[0].float()  # drop the batch dim: (F,) or (C, 1, 1)
        return self

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.shift is None or self.scale is None:
            raise RuntimeError("Scaler used before fit() or load_state_dict()")
        if self.shift.device != x.device:
            self.shift, self.scale = self.shift.to(x.device), self.scale.to(x.device)
        return (x.float() - self.shift) / self.scale

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
