"""The two kernels of full-batch training on a tall table (hundreds of thousands of rows at once),
where PyTorch's CPU defaults lose to scikit-learn's on every L-BFGS evaluation (the profiles in
docs/speed.md, "Tables users have").

- The weight gradient of a Linear layer, X^T G with X (N, F) and G (N, K), is one GEMM whose
  reduction runs over all N rows; on CPU, MKL gives such a product one thread and a slow path.
  Cut into row blocks it becomes a batched GEMM, threaded over blocks, and the blocks' sums. The
  forward product stays one GEMM (its reduction is over the F features).
- Softmax cross-entropy's backward recomputes the softmax from the log-softmax (a second pass of
  exponentials over N x K); computing the loss from the softmax and keeping it for the backward
  needs one.

Both take over only above TALL_ROWS rows, on CPU, outside compilation and export: below it
PyTorch's own ops are faster (an autograd.Function adds Python work to every call).
"""

import math

import torch
import torch.nn.functional as F
from torch import nn
from typing_extensions import override

TALL_ROWS = 1 << 16
BLOCK_ROWS = 1 << 13


def is_tall(x: torch.Tensor) -> bool:
    # compiling first: under torch.export a test of the batch size would pin the batch dimension
    return not torch.compiler.is_compiling() and x.device.type == "cpu" and x.dim() == 2 and x.shape[0] >= TALL_ROWS


class _TallLinear(torch.autograd.Function):
    """x @ weight.T + bias, whose weight gradient X^T G is summed over row blocks."""

    @staticmethod
    @override
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        out = x @ weight.t()  # (N, K): one GEMM over all rows, faster here than blocks and a concatenation
        return out.add_(bias) if bias is not None else out

    @staticmethod
    @override
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor | None]:
        x, weight = ctx.saved_tensors
        grad_x = grad @ weight if ctx.needs_input_grad[0] else None  # a hidden layer's output: (N, F)
        blocks, rest = divmod(x.shape[0], BLOCK_ROWS)
        whole = blocks * BLOCK_ROWS
        # (blocks, K, BLOCK_ROWS) @ (blocks, BLOCK_ROWS, F) -> (blocks, K, F), summed: the weight's (K, F)
        grad_weight = torch.bmm(
            grad[:whole].view(blocks, BLOCK_ROWS, -1).transpose(1, 2), x[:whole].view(blocks, BLOCK_ROWS, -1)
        ).sum(0)
        if rest:
            grad_weight.addmm_(grad[whole:].t(), x[whole:])
        return grad_x, grad_weight, grad.sum(0) if ctx.has_bias else None


class TallLinear(nn.Linear):
    """nn.Linear (same parameters, same results to float rounding) whose weight gradient, on a
    tall batch, is computed in blocks of BLOCK_ROWS rows."""

    @override
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not is_tall(x):
            return super().forward(x)
        return _TallLinear.apply(x, self.weight, self.bias)


class _SoftmaxCrossEntropy(torch.autograd.Function):
    """Mean of weight[i] * -log softmax(logits[i])[target[i]], with the softmax kept for the backward
    (which turns it into the gradient in place: a second backward through it is refused by autograd)."""

    @staticmethod
    @override
    def forward(ctx, logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
        if exp_is_safe(logits):
            top = None  # no (N, K) pass to shift each row by its largest logit
            probs = logits.exp()  # (N, K), unnormalised
        else:
            top = logits.amax(dim=1, keepdim=True)  # (N, 1)
            probs = (logits - top).exp_()
        total = probs.sum(dim=1, keepdim=True)  # (N, 1)
        probs.div_(total)
        log_total = total.log_() if top is None else total.log_().add_(top)
        losses = log_total.squeeze(1).sub_(logits.gather(1, target[:, None]).squeeze(1))  # (N,)
        ctx.save_for_backward(probs, target, weight)
        return (losses if weight is None else losses.mul_(weight)).mean()

    @staticmethod
    @override
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        probs, target, weight = ctx.saved_tensors
        minus_one = torch.full_like(target, -1, dtype=probs.dtype)[:, None]  # (N, 1)
        grad_logits = probs.scatter_add_(1, target[:, None], minus_one)  # softmax - one-hot: (N, K)
        if weight is not None:
            grad_logits.mul_(weight[:, None])
        return grad_logits.mul_(grad / len(target)), None, None


def exp_is_safe(logits: torch.Tensor) -> bool:
    """Whether every exponential of logits (N, K) is a normal float and no row's sum overflows."""
    info, low, high = torch.finfo(logits.dtype), *torch.aminmax(logits)
    return math.log(info.tiny) < low.item() and high.item() + math.log(logits.shape[1]) < math.log(info.max)


def cross_entropy(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean softmax cross-entropy of logits (N, K) against class ids (N,), each row's loss times
    weight (N,) when given."""
    if is_tall(logits):
        return _SoftmaxCrossEntropy.apply(logits, target, weight)
    losses = F.cross_entropy(logits, target, reduction="none")
    return (losses * weight).mean() if weight is not None else losses.mean()
