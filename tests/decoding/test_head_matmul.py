"""The CPU LM-head product computes what F.linear computes, for any number of rows."""

import pytest
import torch
import torch.nn.functional as F

from adafuse.decoding.backend import _skinny_cpu_matmul, head_matmul


@pytest.mark.parametrize("rows", [1, 2, 3, 5, 13])
@pytest.mark.parametrize("bias", [False, True])
def test_head_matmul_matches_linear(rows, bias):
    torch.manual_seed(rows)
    weight = torch.randn(3001, 64)
    b = torch.randn(3001) if bias else None
    x = torch.randn(rows, 64)
    mine = head_matmul(x, weight, b)
    assert mine.shape == (rows, 3001)
    torch.testing.assert_close(mine, F.linear(x, weight, b), atol=1e-4, rtol=1e-5)


def test_used_only_for_float32_cpu_linear_heads():
    head = torch.nn.Linear(8, 16, bias=False)
    assert _skinny_cpu_matmul(torch.randn(2, 8), head)
    assert not _skinny_cpu_matmul(torch.randn(2, 8, dtype=torch.bfloat16), head.to(torch.bfloat16))
    assert not _skinny_cpu_matmul(torch.randn(1, 2, 8), head)  # [batch, pos, hidden]: not gathered
    assert not _skinny_cpu_matmul(torch.randn(2, 8), torch.nn.Identity())
