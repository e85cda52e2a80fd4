"""The full-batch kernels (litlab.models.tall) give PyTorch's results: the same outputs, losses and
gradients as nn.Linear and F.cross_entropy, on tall batches (where they take over) and short ones."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from litlab.models.tall import BLOCK_ROWS, TALL_ROWS, TallLinear, cross_entropy


@pytest.mark.parametrize("rows", [100, TALL_ROWS, TALL_ROWS + BLOCK_ROWS // 3])  # short, tall, tall with a rest
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("hidden", [False, True])  # True: x is a hidden layer's output, needing its gradient
def test_tall_linear_equals_linear(rows: int, bias: bool, hidden: bool) -> None:
    torch.manual_seed(0)
    ours, ref = TallLinear(7, 5, bias=bias).double(), nn.Linear(7, 5, bias=bias).double()
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(rows, 7, dtype=torch.float64, requires_grad=hidden)
    grad_out = torch.randn(rows, 5, dtype=torch.float64)
    out, out_ref = ours(x), ref(x)
    torch.testing.assert_close(out, out_ref)
    (grad_ours,) = torch.autograd.grad(out, x, grad_out, retain_graph=True) if hidden else (None,)
    (grad_ref,) = torch.autograd.grad(out_ref, x, grad_out, retain_graph=True) if hidden else (None,)
    torch.testing.assert_close(grad_ours, grad_ref)
    out.backward(grad_out), out_ref.backward(grad_out)
    for p, p_ref in zip(ours.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(p.grad, p_ref.grad)


@pytest.mark.parametrize("rows", [50, TALL_ROWS + 1])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_equals_torch(rows: int, weighted: bool) -> None:
    torch.manual_seed(0)
    logits = (5 * torch.randn(rows, 4, dtype=torch.float64)).requires_grad_()
    target = torch.randint(0, 4, (rows,))
    weight = torch.rand(rows, dtype=torch.float64) if weighted else None
    ours = cross_entropy(logits, target, weight)
    (grad,) = torch.autograd.grad(3 * ours, logits)
    losses = F.cross_entropy(logits, target, reduction="none")
    ref = (losses * weight).mean() if weight is not None else losses.mean()
    (grad_ref,) = torch.autograd.grad(3 * ref, logits)
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(grad, grad_ref)


def test_tall_linear_exports_with_a_dynamic_batch() -> None:
    """Under torch.export the block path is not traced (its branch on the batch size would pin the
    batch dimension): the exported program takes any batch and computes the plain product."""
    layer = TallLinear(3, 2)
    batch = torch.export.Dim("batch")
    program = torch.export.export(layer, (torch.randn(4, 3),), dynamic_shapes=({0: batch},))
    x = torch.randn(TALL_ROWS + 5, 3)
    torch.testing.assert_close(program.module()(x), F.linear(x, layer.weight, layer.bias))
