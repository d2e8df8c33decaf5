"""docs/EXPERIMENTS.md E3 machinery: adapters equal their merged weights; trainable parameter counts."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from theory_lab.mlp_finetune import Adapted, _mlp, finetune, load_digits_split  # noqa: E402


def test_adapter_forward_equals_merged_weights():
    net = _mlp(torch, np.random.default_rng(0)).eval()
    ad = Adapted(net, 1, torch)
    ad.link("A", np.random.default_rng(1))                 # B ~ N(0,1) frozen, A = 0
    with torch.no_grad():
        for A in ad.A:
            A.copy_(torch.randn(A.shape))
    x = torch.randn(7, 64)
    with torch.no_grad():
        before = ad.net.eval()(x)
        ad.merge()
        for A in ad.A:
            A.zero_()                                       # the merged product now lives in the weights
        after = ad.net(x)
    # float32: three layers of 64-term sums with N(0,1) factors, so allow 64 * 3 * eps32 of the output scale
    tol = 64 * 3 * torch.finfo(torch.float32).eps * float(before.abs().max())
    torch.testing.assert_close(before, after, rtol=0, atol=tol)


def test_trainable_parameter_counts():
    """MLP 64-64-64-5: full 64*64+64 + 64*64+64 + 64*5+5 = 8645; rank-1 LoRA sum(in + out) = 325;
    one-sided A (r x in) 64+64+64 = 192, B (out x r) 64+64+5 = 133 (docs/EXPERIMENTS.md E3 with 784 -> 64)."""
    data = load_digits_split(0)
    net = _mlp(torch, np.random.default_rng(0))
    counts = {m: finetune(net, data, m, seed=1, epochs=1)[1]
              for m in ("fpft", "lora-bzero", "rac-lora-b", "rac-lora-a", "cola")}
    assert counts == {"fpft": 8645, "lora-bzero": 325, "rac-lora-b": 192, "rac-lora-a": 133, "cola": 325}
