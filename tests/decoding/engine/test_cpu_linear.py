"""The CPU float32 linear products (dense head product, oneDNN packed weights) compute what F.linear computes."""

import pytest
import torch
import torch.nn.functional as F

from adafuse.decoding.engine.cpu_linear import cpu_head, head_fits, head_logits, head_matmul, packed_weight


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


def test_used_only_for_float32_and_bfloat16_cpu_linear_heads():
    head = torch.nn.Linear(8, 16, bias=False)
    assert cpu_head(torch.randn(2, 8), head)
    assert cpu_head(torch.randn(2, 8, dtype=torch.bfloat16), torch.nn.Linear(8, 16).to(torch.bfloat16))
    assert not cpu_head(torch.randn(2, 8, dtype=torch.bfloat16), head)  # dtypes differ
    assert not cpu_head(torch.randn(2, 8, dtype=torch.float16), head.to(torch.float16))
    assert not cpu_head(torch.randn(1, 2, 8), head)  # [batch, pos, hidden]: not gathered
    assert not cpu_head(torch.randn(2, 8), torch.nn.Identity())


@pytest.mark.parametrize("rows", [1, 3, 40])
@pytest.mark.parametrize("pack", [False, True])
def test_bfloat16_head_logits_match_linear_within_its_rounding(rows, pack):
    torch.manual_seed(rows)
    head = torch.nn.Linear(64, 3001, bias=True).to(torch.bfloat16)
    x = torch.randn(rows, 64, dtype=torch.bfloat16)
    with torch.inference_mode():
        mine = head_logits(x, head, pack=pack)
        exact = F.linear(x.float(), head.weight.float(), head.bias.float())
    assert mine.dtype == torch.bfloat16 and mine.shape == (rows, 3001)
    # bf16 keeps 8 bits: each logit within 2^-8 of its size, plus the accumulation's rounding
    torch.testing.assert_close(mine.float(), exact, atol=0.02 * float(exact.abs().max()), rtol=2 ** -7)
    if pack and packed_weight(head) is None:
        pytest.skip("this torch has no oneDNN")


def test_only_a_bfloat16_head_that_fits_is_packed_alone():
    class Model(torch.nn.Module):
        def __init__(self, dtype):
            super().__init__()
            self.head = torch.nn.Linear(8, 16).to(dtype)

        def get_output_embeddings(self):
            return self.head

    assert head_fits(Model(torch.bfloat16))
    assert not head_fits(Model(torch.float32))  # float32: packed with the model (pack_model)
    assert not head_fits(Model(torch.bfloat16), budget=0.0)


@pytest.mark.parametrize("rows", [1, 2, 3, 4, 13, 40])
@pytest.mark.parametrize("bias", [False, True])
def test_head_logits_match_linear(rows, bias):
    torch.manual_seed(rows)
    head = torch.nn.Linear(64, 3001, bias=bias)
    x = torch.randn(rows, 64)
    with torch.inference_mode():
        mine = head_logits(x, head)
        torch.testing.assert_close(mine, head(x), atol=1e-4, rtol=1e-5)


def test_packed_weight_is_made_once_and_remade_when_the_weight_changes():
    head = torch.nn.Linear(32, 500, bias=False)
    first = packed_weight(head)
    if first is None:
        pytest.skip("this torch has no oneDNN")
    assert packed_weight(head) is first
    with torch.no_grad():
        head.weight.mul_(2.0)  # in place: same storage, new version
    x = torch.randn(5, 32)
    assert packed_weight(head) is not first
    with torch.inference_mode():
        torch.testing.assert_close(head_logits(x, head), F.linear(x, head.weight), atol=1e-4, rtol=1e-5)


def test_packed_product_that_disagrees_on_the_probe_is_not_used(monkeypatch):
    import adafuse.decoding.engine.cpu_linear as backend

    head = torch.nn.Linear(32, 500, bias=False)
    monkeypatch.setattr(backend, "_linear_packed", lambda x, packed, bias: torch.zeros(x.shape[0], 500))
    assert backend.packed_weight(head) is None
    x = torch.randn(6, 32)
    with torch.inference_mode():  # falls back to the dense product
        torch.testing.assert_close(backend.head_logits(x, head), F.linear(x, head.weight), atol=1e-4, rtol=1e-5)


@pytest.fixture(scope="module")
def tiny_pair(tmp_path_factory):
    """Two loads of each tiny model: one to route through the packed product, one left as is."""
    from tests import tiny_hf

    from adafuse import load_model

    root = tmp_path_factory.mktemp("tiny_cpu_linear")
    paths = {kind: tiny_hf.build(kind, root / kind, seed=0) for kind in ("llama", "gemma")}
    return {kind: (load_model(str(p), device="cpu"), load_model(str(p), device="cpu")) for kind, p in paths.items()}


@pytest.mark.parametrize("kind", ["llama", "gemma"])
def test_packed_model_gives_the_logits_of_the_plain_model(tiny_pair, kind):
    from adafuse.decoding.engine.cpu_linear import pack_model

    packed, plain = (lm.model for lm in tiny_pair[kind])
    assert pack_model(packed)
    linears = [m for m in packed.modules() if type(m) is torch.nn.Linear]
    head = packed.get_output_embeddings()
    assert all("forward" in m.__dict__ for m in linears if m is not head)
    assert "forward" not in head.__dict__  # the head is served by head_logits
    assert pack_model(packed)  # decided once per model
    ids = torch.randint(0, packed.config.vocab_size, (3, 11), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        got, want = packed(input_ids=ids).logits, plain(input_ids=ids).logits
        assert all(packed_weight(m) is not None for m in linears if m is not head)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    # with gradients on, the layers compute F.linear and can be trained through
    loss = packed(input_ids=ids[:1]).logits.sum()
    loss.backward()
    assert linears[0].weight.grad is not None
    packed.zero_grad(set_to_none=True)


def test_unpack_model_gives_the_layers_back(tmp_path):
    from adafuse import load_model
    from adafuse.decoding.engine import cpu_linear
    from tests import tiny_hf

    model = load_model(str(tiny_hf.build("llama", tmp_path / "llama", seed=0)), device="cpu").model
    assert not cpu_linear.is_packed(model)
    assert cpu_linear.pack_model(model) and cpu_linear.is_packed(model)
    assert not any(k.startswith("_adafuse") for m in model.modules() for k in m.__dict__)
    cpu_linear.unpack_model(model)
    assert not cpu_linear.is_packed(model)
    assert not any("forward" in m.__dict__ for m in model.modules())
    assert cpu_linear.pack_model(model)  # decided again


def test_executor_packs_only_when_asked(tiny_pair):
    from adafuse.decoding.engine import Executor
    from adafuse.decoding.output import ModelCost

    _, plain = tiny_pair["llama"]
    Executor(plain, ModelCost(plain.name), pack_cpu_weights=False)
    assert not any("forward" in m.__dict__ for m in plain.model.modules())


def test_a_model_whose_copies_do_not_fit_stays_dense(tmp_path, monkeypatch):
    from adafuse import load_model
    from adafuse.decoding.engine import cpu_linear
    from tests import tiny_hf

    lm = load_model(str(tiny_hf.build("llama", tmp_path / "llama", seed=0)), device="cpu")
    need = sum(m.weight.numel() * 4 for m in lm.model.modules() if type(m) is torch.nn.Linear)
    monkeypatch.setattr(cpu_linear, "available_bytes", lambda: need)  # copies need more than half
    assert not cpu_linear.pack_model(lm.model)
    assert not any("forward" in m.__dict__ for m in lm.model.modules())
    monkeypatch.setattr(cpu_linear, "available_bytes", lambda: None)  # unknown: dense too
    assert not cpu_linear.pack_model(load_model(str(tmp_path / "llama"), device="cpu").model)
    monkeypatch.setattr(cpu_linear, "available_bytes", lambda: 2 * need)
    assert cpu_linear.pack_model(load_model(str(tmp_path / "llama"), device="cpu").model)
