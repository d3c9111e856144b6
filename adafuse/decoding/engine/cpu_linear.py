"""Linear layers on CPU, by the fastest exact route for the few rows decoding feeds.

A decoding step sends 1-12 positions per prompt through each linear layer (a batch of 8
prompts, up to about 100 through the LM head). With so few rows MKL's `F.linear` takes slow
skinny-matrix paths, and re-packs the whole weight on every call. Two fixes, both computing
the same dot products (the results agree to float32 rounding):
- `head_matmul`: the weight as the left operand, `(weight @ hidden.T).T`; no extra memory.
- oneDNN's product over a weight packed once (`packed_weight`), kept on the module while
  the weight is unchanged: a second copy of the weight, and the fastest from 3 rows on for
  the LM head and from 1 row on for the layers inside the model (`bench/head_matmul.py`).
`head_logits` picks between them for the LM head; `pack_model` routes every other linear
layer of a CPU float32 model through the packed product, by setting that layer's `forward`
(visible as `is_packed(model)`, undone by `unpack_model(model)`; an engine built with
`EngineOptions(pack_cpu_weights=False)` never does it). The packed copies are kept here,
keyed weakly by the layer, not stored on it.

In bfloat16 only the LM head is packed (`head_logits`): on the 2-core VM (AMD EPYC with
AVX512-BF16, torch 2.13, 2 threads) the packed product took Gemma 3's 262k-row head from
18.9 to 12.8 ms at one row and from 53 to 45 ms at 64, SmolLM2's from 3.7 to 2.6 ms, while
`head_matmul` is slower than `F.linear` in bf16 (30 ms) and the layers inside the model gain
nothing measurable (measured 2026-12-02 on the weight shapes of `bench/head_matmul.py`, random
weights, idle machine; `bench/head_matmul.py --dtype bfloat16 --shapes all` repeats it).
"""

from __future__ import annotations

import functools
import weakref

import torch
import torch.nn.functional as F

# below this many rows the dense head product is as fast as the packed one (bench/head_matmul.py)
PACKED_MIN_ROWS = 3

# {linear: (weight key, packed copy or None)} and {model: whether pack_model routed it}
_PACKED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_PACKED_MODELS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


HEAD_DTYPES = (torch.float32, torch.bfloat16)


def cpu_head(hidden: torch.Tensor, head) -> bool:
    """Whether `head_logits` applies: gathered 2-d hidden states and an `nn.Linear` head of
    the same dtype, float32 or bfloat16, on CPU."""
    return (hidden.device.type == "cpu" and hidden.dim() == 2 and isinstance(head, torch.nn.Linear)
            and head.weight.dtype in HEAD_DTYPES and hidden.dtype == head.weight.dtype)


def head_matmul(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """`F.linear(hidden, weight, bias)` for the LM head on CPU, as `(weight @ hidden.T).T`.

    With few rows MKL runs `F.linear` through slow skinny-matrix paths: on the 2-core VM,
    torch 2.13, Gemma 3's 262k x 640 head took 64 ms for one row and 146 ms for two,
    against 32 and 25 ms this way (`bench/head_matmul.py`). One row is duplicated, because
    a matrix-vector product takes the slow path again."""
    rows = hidden.shape[0]
    if rows == 1:
        hidden = torch.cat([hidden, hidden])
    logits = (weight @ hidden.t()).t()[:rows]
    return logits + bias if bias is not None else logits


def packed_weight(linear: torch.nn.Linear) -> torch.Tensor | None:
    """A oneDNN-blocked copy of a float32 or bfloat16 CPU linear layer's weight, made on first
    use and kept while the weight is unchanged (as much memory again as the weight: 0.63 GB
    for Gemma 3's head in float32). None where this torch has no oneDNN, or where oneDNN's
    product does not agree with the dense one on a probe (say, a reduced-precision fp32
    mode was switched on; in bfloat16, within its rounding)."""
    weight = linear.weight
    key = (weight.data_ptr(), weight._version, tuple(weight.shape))
    cached = _PACKED.get(linear)
    if cached is not None and cached[0] == key:
        return cached[1]
    packed = None
    if (torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_reorder_linear_weight")
            and weight.device.type == "cpu" and weight.dtype in HEAD_DTYPES):
        try:
            with torch.inference_mode():
                packed = torch.ops.mkldnn._reorder_linear_weight(weight.detach(), 32)
                probe = torch.randn(4, weight.shape[1], generator=torch.Generator().manual_seed(0))
                bias = linear.bias.float() if linear.bias is not None else None
                mine = _linear_packed(probe.to(weight.dtype), packed, linear.bias).float()
                dense = head_matmul(probe.to(weight.dtype).float(), weight.detach().float(), bias)
                tol = 1e-4 if weight.dtype == torch.float32 else 2e-2  # bf16 keeps 8 bits
                if not torch.allclose(mine, dense, rtol=tol, atol=tol * float(dense.abs().max())):
                    packed = None
        except (RuntimeError, NotImplementedError):
            packed = None
    _PACKED[linear] = (key, packed)
    return packed


def _linear_packed(hidden: torch.Tensor, packed: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return torch.ops.mkldnn._linear_pointwise(hidden.contiguous(), packed, bias, "none", [], "")


def head_logits(hidden: torch.Tensor, head: torch.nn.Linear, pack: bool = True) -> torch.Tensor:
    """`head(hidden)` for a float32 or bfloat16 LM head on CPU (`cpu_head`).

    bfloat16: the packed product for any number of rows (see the module's docstring), else
    `F.linear`. float32:
    From `PACKED_MIN_ROWS` rows on, the packed product is the fastest: on the 2-core VM,
    Gemma 3's head took 30 ms for 12 rows and 205 ms for 96, against 120 and 345 ms for
    `head_matmul` (`bench/head_matmul.py`). For 1-2 rows the dense `head_matmul` is as fast
    or faster and needs no copy of the weight, so greedy decoding never makes one.
    `pack=False`: always the dense product."""
    if head.weight.dtype == torch.bfloat16:
        packed = packed_weight(head) if pack else None
        return _linear_packed(hidden, packed, head.bias) if packed is not None else F.linear(hidden, head.weight, head.bias)
    if pack and hidden.shape[0] >= PACKED_MIN_ROWS:
        packed = packed_weight(head)
        if packed is not None:
            return _linear_packed(hidden, packed, head.bias)
    return head_matmul(hidden, head.weight, head.bias)


def _packed_forward(linear: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    if x.device.type == "cpu" and x.dtype == torch.float32 and not torch.is_grad_enabled():
        packed = packed_weight(linear)
        if packed is not None:
            return _linear_packed(x, packed, linear.bias)
    return F.linear(x, linear.weight, linear.bias)


def available_bytes() -> int | None:
    """Memory available to new allocations now (Linux's MemAvailable), or None where unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def head_fits(model: torch.nn.Module, budget: float = 0.5) -> bool:
    """Whether a packed copy of a bfloat16 CPU model's LM head fits in `budget` of the memory
    available now (in bf16 only the head is packed)."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if not isinstance(head, torch.nn.Linear) or head.weight.device.type != "cpu" \
            or head.weight.dtype != torch.bfloat16:
        return False
    free = available_bytes()
    return free is not None and head.weight.numel() * head.weight.element_size() <= budget * free


def _routable(module: torch.nn.Module, head) -> bool:
    return (type(module) is torch.nn.Linear and module is not head and "forward" not in module.__dict__
            and not hasattr(module, "_hf_hook") and module.weight.device.type == "cpu"
            and module.weight.dtype == torch.float32)


def pack_model(model: torch.nn.Module, budget: float = 0.5) -> bool:
    """Route the linear layers inside a CPU float32 model (not its LM head, which
    `head_logits` serves) through the packed product, for inference: with gradients on, or
    for inputs of another dtype or device, a layer computes `F.linear` as before. Decided
    once per model (each weight is packed on first use); returns whether the model is packed.

    The packed copies take as much memory again as the weights they copy (the head's
    included). A model whose copies would need more than `budget` of the memory available
    now, or where that is unknown, is left dense: an 8B model in float32 on a laptop stays
    as it was. Layers that another library already wraps (accelerate's hooks replace
    `forward`) are left alone."""
    if not isinstance(model, torch.nn.Module):
        return False
    if model in _PACKED_MODELS:
        return _PACKED_MODELS[model]
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    layers = [m for m in model.modules() if _routable(m, head)]
    need = sum(m.weight.numel() * m.weight.element_size() for m in layers)
    if isinstance(head, torch.nn.Linear):
        need += head.weight.numel() * head.weight.element_size()
    free = available_bytes()
    packed = bool(layers) and free is not None and need <= budget * free
    if packed:
        for module in layers:
            module.forward = functools.partial(_packed_forward, module)
    _PACKED_MODELS[model] = packed
    return packed


def _routed(module: torch.nn.Module) -> bool:
    forward = module.__dict__.get("forward")
    return isinstance(forward, functools.partial) and forward.func is _packed_forward


def is_packed(model: torch.nn.Module) -> bool:
    """Whether `pack_model` routed this model's linear layers through the packed product."""
    return any(_routed(m) for m in model.modules())


def unpack_model(model: torch.nn.Module) -> None:
    """Undo `pack_model`: every routed layer computes its own forward again, and the packed
    copies of this model's weights are dropped."""
    for module in model.modules():
        if _routed(module):
            del module.forward
        _PACKED.pop(module, None)
    _PACKED_MODELS.pop(model, None)
