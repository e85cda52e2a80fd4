"""The two kernels of full-batch training on a tall table (hundreds of thousands of rows at once),
where PyTorch's CPU defaults lose to scikit-learn's on every L-BFGS evaluation (the profiles in
docs/speed.md, "Tables users have").

- The weight gradient of a Linear layer, X^T G with X (N, F) and G (N, K), is one GEMM whose
  reduction runs over all N rows; on CPU, MKL gives such a product one thread and a slow path.
  Cut into row blocks it becomes a batched GEMM, threaded over blocks, and the blocks' sums.
- Softmax cross-entropy's backward recomputes the softmax from the log-softmax (a second pass of
  exponentials over N x K); computing the loss from the softmax and keeping it for the backward
  needs one.

Both take over only above TALL_ROWS rows, on CPU, outside compilation and export: below it
PyTorch's own ops are faster (an autograd.Function adds Python work to every call).
"""

import torch
import torch.nn.functional as F
from torch import nn
from typing_extensions import override

TALL_ROWS = 1 << 16
BLOCK_ROWS = 1 << 13


def is_tall(x: torch.Tensor) -> bool:
    # compiling first: under torch.export a test of the batch size would pin the batch dimension
    return not torch.compiler.is_compiling() and x.device.type == "cpu" and x.dim() == 2 and x.shape[0] >= TALL_ROWS


class TallLinear(nn.Linear):
    """nn.Linear (same parameters, same results to float rounding) that multiplies a tall batch
    in blocks of BLOCK_ROWS rows."""

    @override
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not is_tall(x):
            return super().forward(x)
        blocks, rest = divmod(x.shape[0], BLOCK_ROWS)
        whole = x[: blocks * BLOCK_ROWS].view(blocks, BLOCK_ROWS, -1)  # (blocks, BLOCK_ROWS, F)
        weight = self.weight.t().expand(blocks, -1, -1)  # (blocks, F, K): its gradient sums the blocks'
        out = whole @ weight if self.bias is None else torch.baddbmm(self.bias, whole, weight)
        out = out.view(blocks * BLOCK_ROWS, -1)  # (N - rest, K)
        return torch.cat([out, super().forward(x[blocks * BLOCK_ROWS :])]) if rest else out


class _SoftmaxCrossEntropy(torch.autograd.Function):
    """Mean of weight[i] * -log softmax(logits[i])[target[i]], with the softmax kept for the backward."""

    @staticmethod
    @override
    def forward(ctx, logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
        top = logits.amax(dim=1, keepdim=True)  # (N, 1)
        probs = (logits - top).exp_()  # (N, K), unnormalised
        total = probs.sum(dim=1, keepdim=True)  # (N, 1)
        probs.div_(total)
        losses = total.log_().add_(top).squeeze(1).sub_(logits.gather(1, target[:, None]).squeeze(1))  # (N,)
        ctx.save_for_backward(probs, target, weight)
        return (losses if weight is None else losses.mul_(weight)).mean()

    @staticmethod
    @override
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        probs, target, weight = ctx.saved_tensors
        minus_one = torch.full_like(target, -1, dtype=probs.dtype)[:, None]  # (N, 1)
        grad_logits = probs.scatter_add(1, target[:, None], minus_one)  # softmax - one-hot: (N, K)
        if weight is not None:
            grad_logits.mul_(weight[:, None])
        return grad_logits.mul_(grad / len(target)), None, None


def cross_entropy(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean softmax cross-entropy of logits (N, K) against class ids (N,), each row's loss times
    weight (N,) when given."""
    if is_tall(logits):
        return _SoftmaxCrossEntropy.apply(logits, target, weight)
    losses = F.cross_entropy(logits, target, reduction="none")
    return (losses * weight).mean() if weight is not None else losses.mean()
