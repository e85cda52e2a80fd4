"""Image augmentation applied to a whole batch with tensor ops, on the device the batch is on."""

import math

import torch
import torch.nn.functional as F

from litlab.errors import UserError
from litlab.values import is_int, is_number


class BatchAugment:
    """Random crop with zero padding, horizontal flip, and small affine jitter, per sample.

    Works on a (B, C, H, W) batch of raw pixel values (before scaling, so that padding and
    the area moved in by a shift are black, as in the original images). Each sample gets its
    own random offsets, flip and angle, drawn on the batch's device. Train batches only.
    """

    def __init__(self, crop_padding: int = 0, hflip: bool = False, translate: float = 0.0, rotate: float = 0.0) -> None:
        if not is_int(crop_padding) or crop_padding < 0:
            raise UserError(
                f"data.crop_padding={crop_padding!r} is invalid: use 0 (off) or a positive number of pixels"
            )
        if not isinstance(hflip, bool):
            raise UserError(f"data.hflip={hflip!r} is invalid: use true or false")
        if not (is_number(translate) and 0 <= translate < 1):
            raise UserError(
                f"data.translate={translate!r} is invalid: a fraction of the image size in [0, 1), e.g. 0.1"
            )
        if not (is_number(rotate) and 0 <= rotate <= 180):
            raise UserError(f"data.rotate={rotate!r} is invalid: a maximum angle in degrees in [0, 180], e.g. 10")
        self.crop_padding, self.hflip, self.translate, self.rotate = crop_padding, hflip, translate, rotate

    @property
    def active(self) -> bool:
        return bool(self.crop_padding or self.hflip or self.translate or self.rotate)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()  # (B, C, H, W)
        if self.crop_padding:
            x = self._random_crop(x)
        if self.hflip:
            flip = torch.rand(len(x), device=x.device) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
        if self.translate or self.rotate:
            x = self._random_affine(x)
        return x

    def _random_crop(self, x: torch.Tensor) -> torch.Tensor:
        """Pad by p on each side, then cut an H x W window at a random offset in [0, 2p]."""
        b, c, h, w = x.shape
        p = self.crop_padding
        padded = F.pad(x, (p, p, p, p))  # (B, C, H + 2p, W + 2p)
        dy = torch.randint(0, 2 * p + 1, (b, 1), device=x.device)
        dx = torch.randint(0, 2 * p + 1, (b, 1), device=x.device)
        rows = (dy + torch.arange(h, device=x.device))[:, None, :, None]  # (B, 1, H, 1)
        cols = (dx + torch.arange(w, device=x.device))[:, None, None, :]  # (B, 1, 1, W)
        batch = torch.arange(b, device=x.device)[:, None, None, None]
        chan = torch.arange(c, device=x.device)[None, :, None, None]
        return padded[batch, chan, rows, cols]

    def _random_affine(self, x: torch.Tensor) -> torch.Tensor:
        """Rotate by up to `rotate` degrees and shift by up to `translate` of the size, bilinear."""
        b = len(x)
        angle = (torch.rand(b, device=x.device) * 2 - 1) * math.radians(self.rotate)
        shift = (torch.rand(b, 2, device=x.device) * 2 - 1) * self.translate * 2  # grid coords span [-1, 1]
        cos, sin = angle.cos(), angle.sin()
        theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)  # (B, H, W, 2)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
