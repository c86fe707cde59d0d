import math

import pytest
import torch

from reference import ensemble_loop, gsg_loop, simsiam_loop
from siamkit import losses
from siamkit.losses import GSG_CASES, ensemble, gsg, gsg_cases, negative_cosine, simsiam


def _pz(v=2, b=5, d=7, dtype=torch.float32):
    return torch.randn(v, b, d, dtype=dtype), torch.randn(v, b, d, dtype=dtype)


# ---- by hand ---------------------------------------------------------------------------------


def test_negative_cosine_by_hand():
    p = torch.tensor([[1.0, 0.0], [3.0, 4.0], [1.0, 1.0]])
    z = torch.tensor([[1.0, 1.0], [3.0, 4.0], [-2.0, -2.0]])
    assert negative_cosine(p, z).tolist() == pytest.approx([-1 / math.sqrt(2), -1.0, 1.0])
    assert negative_cosine(p, z).shape == (3,)


def test_simsiam_by_hand():
    # B = 1: D(p1, z2) = -cos([1,0],[1,1]) = -1/sqrt2 ; D(p2, z1) = -cos([0,1],[1,0]) = 0
    p = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])
    z = torch.tensor([[[1.0, 0.0]], [[1.0, 1.0]]])
    assert simsiam(p, z).item() == pytest.approx(0.5 * (-1 / math.sqrt(2)) + 0.5 * 0.0)


def test_gsg_cases_by_hand():
    # 1-d projections on a line: z11=0, z12=10 ; z21=9, z22=3
    # d(11,21)=9  d(11,22)=3  d(12,21)=1  d(12,22)=7  -> case 2 (12,21)
    z1 = torch.tensor([[[0.0, 0.0]], [[10.0, 0.0]]])
    z2 = torch.tensor([[[9.0, 0.0]], [[3.0, 0.0]]])
    assert gsg_cases(z1, z2).tolist() == [2]
    assert GSG_CASES[2] == (1, 0)


def test_gsg_cases_ties_go_to_lowest_index():
    z = torch.zeros(2, 3, 4)
    z2 = torch.zeros(2, 3, 4)
    z2[:, 1] = 1.0  # pair 1: all four distances equal (2) -> case 0
    z2[0, 2] = 5.0  # pair 2: view 21 far, 22 close: d(11,22) = d(12,22) = 0 -> case 1
    assert gsg_cases(z, z2).tolist() == [0, 0, 1]


def test_gsg_by_hand_uses_the_selected_case():
    z1 = torch.tensor([[[0.0, 1.0]], [[10.0, 1.0]]])
    z2 = torch.tensor([[[9.0, 1.0]], [[3.0, 1.0]]])  # closest pair (12, 21) -> case 2: p12 vs z11, p21 vs z22
    p1 = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])
    p2 = torch.tensor([[[1.0, 1.0]], [[5.0, 5.0]]])
    expected = 0.5 * -(1 / 1) + 0.5 * -((3 + 1) / (math.sqrt(2) * math.sqrt(10)))
    assert gsg(p1, z1, p2, z2).item() == pytest.approx(expected)
    # reverse takes the complement, case 1: p11 vs z12, p22 vs z21
    rev = 0.5 * -(10 / math.sqrt(101)) + 0.5 * -((45 + 5) / (math.sqrt(50) * math.sqrt(82)))
    assert gsg(p1, z1, p2, z2, mode="reverse").item() == pytest.approx(rev)


def test_ensemble_by_hand():
    # K = 2, B = 1: zbar = ([1,0] + [0,1]) / 2 -> direction [1,1]
    z = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])
    p = torch.tensor([[[1.0, 1.0]], [[1.0, 0.0]]])
    assert ensemble(p, z).item() == pytest.approx(0.5 * (-1.0) + 0.5 * (-1 / math.sqrt(2)))
    # leave-one-out with K = 2 is SimSiam: p1 vs z2, p2 vs z1
    assert ensemble(p, z, leave_one_out=True).item() == pytest.approx(simsiam(p, z).item())


def test_multicrop_simsiam_by_hand():
    # two full-size views and one small crop, B = 1; only views 0 and 1 give targets:
    # D(p0, z1) = -cos([1,0],[1,1]) = -1/sqrt2, D(p1, z0) = -cos([0,1],[1,0]) = 0,
    # D(p2, z0) = -cos([1,0],[1,0]) = -1, D(p2, z1) = -1/sqrt2; four pairs
    p = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]], [[1.0, 0.0]]])
    z = torch.tensor([[[1.0, 0.0]], [[1.0, 1.0]]])
    r = 1 / math.sqrt(2)
    assert simsiam(p, z).item() == pytest.approx((-r + 0.0 - 1.0 - r) / 4)


def test_multicrop_ensemble_by_hand():
    # zbar = ([1,0] + [1,1]) / 2 = [1, 0.5]; the small crop p2 = [2, 1] points along it: D = -1
    p = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]], [[2.0, 1.0]]])
    z = torch.tensor([[[1.0, 0.0]], [[1.0, 1.0]]])
    d0 = -1 / math.sqrt(1.25)  # -cos([1,0],[1,0.5])
    d1 = -0.5 / math.sqrt(1.25)  # -cos([0,1],[1,0.5])
    assert ensemble(p, z).item() == pytest.approx((d0 + d1 - 1.0) / 3)
    # leave-one-out: p0 vs z1, p1 vs z0 (SimSiam's pairs), the small crop vs the full mean
    loo = (-1 / math.sqrt(2) + 0.0 - 1.0) / 3
    assert ensemble(p, z, leave_one_out=True).item() == pytest.approx(loo)


# ---- vectorised against the plain loops --------------------------------------------------------


@pytest.mark.parametrize("v", [2, 3, 4])
def test_simsiam_matches_loop(v):
    p, z = _pz(v=v)
    assert simsiam(p, z).item() == pytest.approx(simsiam_loop(p, z), abs=1e-6)


@pytest.mark.parametrize("mode", ["guided", "reverse"])
def test_gsg_matches_algorithm_1(mode):
    p1, z1 = _pz(b=64, d=6)
    p2, z2 = _pz(b=64, d=6)
    ref, ref_cases = gsg_loop(p1, z1, p2, z2, mode=mode)
    assert gsg(p1, z1, p2, z2, mode=mode).item() == pytest.approx(ref, abs=1e-6)
    per_pair = gsg(p1, z1, p2, z2, mode=mode, reduction="none")
    assert per_pair.shape == (64,)
    assert losses.gsg_select(z1, z2, mode).tolist() == ref_cases
    assert len(set(ref_cases)) == 4  # the test exercises every branch


def test_gsg_random_matches_loop_with_the_same_draws():
    p1, z1 = _pz(b=200)
    p2, z2 = _pz(b=200)
    draws = torch.randint(4, (200,), generator=torch.Generator().manual_seed(7))
    ref, _ = gsg_loop(p1, z1, p2, z2, mode="random", draws=draws)
    got = gsg(p1, z1, p2, z2, mode="random", generator=torch.Generator().manual_seed(7))
    assert got.item() == pytest.approx(ref, abs=1e-6)


def test_gsg_random_is_uniform_and_reproducible():
    z1, z2 = _pz(b=4000)
    a = losses.gsg_select(z1, z2, "random", torch.Generator().manual_seed(1))
    b = losses.gsg_select(z1, z2, "random", torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    shares = torch.bincount(a, minlength=4).float() / 4000
    assert torch.all((shares - 0.25).abs() < 0.03), shares  # 4000 draws: sd of a share is 0.007


@pytest.mark.parametrize("loo", [False, True])
@pytest.mark.parametrize("k", [2, 4])
def test_ensemble_matches_loop(k, loo):
    p, z = _pz(v=k, b=4, d=5)
    assert ensemble(p, z, leave_one_out=loo).item() == pytest.approx(ensemble_loop(p, z, loo), abs=1e-6)


@pytest.mark.parametrize(("v", "g"), [(3, 2), (6, 2), (6, 4)])
def test_multicrop_matches_loop(v, g):
    p, z = torch.randn(v, 5, 7), torch.randn(g, 5, 7)
    assert simsiam(p, z).item() == pytest.approx(simsiam_loop(p, z), abs=1e-6)
    for loo in (False, True):
        assert ensemble(p, z, leave_one_out=loo).item() == pytest.approx(ensemble_loop(p, z, loo), abs=1e-6)


def test_simsiam_kaug_is_not_ensiam():
    p, z = _pz(v=4)
    assert simsiam(p, z).item() != pytest.approx(ensemble(p, z).item(), abs=1e-4)


# ---- properties --------------------------------------------------------------------------------


def _grads(loss, *tensors):
    return torch.autograd.grad(loss, tensors, allow_unused=True)


def test_no_gradient_reaches_the_targets():
    p, z = (t.requires_grad_() for t in _pz(v=4))
    for loss in (simsiam(p, z), ensemble(p, z), ensemble(p, z, leave_one_out=True)):
        gp, gz = _grads(loss, p, z)
        assert gz is None and gp is not None and gp.abs().sum() > 0
    p, z = torch.randn(5, 3, 4, requires_grad=True), torch.randn(2, 3, 4, requires_grad=True)
    for loss in (simsiam(p, z), ensemble(p, z), ensemble(p, z, leave_one_out=True)):  # multi-crop
        gp, gz = _grads(loss, p, z)
        assert gz is None and bool((gp[2:].abs().sum((1, 2)) > 0).all())  # every small crop learns
    p1, z1 = (t.requires_grad_() for t in _pz())
    p2, z2 = (t.requires_grad_() for t in _pz())
    for mode in ("guided", "random", "reverse"):
        g = _grads(gsg(p1, z1, p2, z2, mode=mode), p1, z1, p2, z2)
        assert g[1] is None and g[3] is None
        assert g[0] is not None and g[2] is not None


def test_gsg_gradient_reaches_only_the_selected_predictions():
    p1, z1 = _pz(b=32)
    p2, z2 = _pz(b=32)
    p1.requires_grad_()
    p2.requires_grad_()
    cases = gsg_cases(z1, z2)
    g1, g2 = _grads(gsg(p1, z1, p2, z2), p1, p2)
    for n, case in enumerate(cases.tolist()):
        a, c = GSG_CASES[case]
        assert g1[a, n].abs().sum() > 0 and g1[1 - a, n].abs().sum() == 0
        assert g2[c, n].abs().sum() > 0 and g2[1 - c, n].abs().sum() == 0


def test_losses_are_bounded_and_minimal_at_alignment():
    p, z = _pz(v=3)
    for loss in (simsiam(p, z), ensemble(p, z)):
        assert -1.0 <= loss.item() <= 1.0
    u = torch.randn(1, 5, 7).expand(3, 5, 7)  # every view of an image predicts its own target exactly
    assert simsiam(2 * u, u).item() == pytest.approx(-1.0, abs=1e-6)
    assert ensemble(2 * u, u).item() == pytest.approx(-1.0, abs=1e-6)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_losses_run_in_fp32_for_low_precision_inputs(dtype):
    p, z = _pz(v=2, b=8, d=2048)
    p16, z16 = (
        (300 * p).to(dtype),
        (300 * z).to(dtype),
    )  # squares overflow fp16: normalising in fp16 gives inf
    for fn in (simsiam, ensemble):
        got = fn(p16, z16)
        assert got.dtype == torch.float32 and torch.isfinite(got)
        assert got.item() == pytest.approx(fn(p16.float(), z16.float()).item(), abs=1e-6)
    g = gsg(p16, z16, p16.flip(1), z16.flip(1))
    assert g.dtype == torch.float32 and torch.isfinite(g)


def test_bad_shapes_are_clear_errors():
    with pytest.raises(ValueError, match=r"simsiam: needs at least 2 target views"):
        simsiam(torch.randn(1, 4, 3), torch.randn(1, 4, 3))
    with pytest.raises(ValueError, match=r"\(V, B, D\)"):
        simsiam(torch.randn(2, 4, 3), torch.randn(2, 4, 5))
    with pytest.raises(ValueError, match=r"G <= V"):
        ensemble(torch.randn(2, 4, 3), torch.randn(3, 4, 3))
    with pytest.raises(ValueError, match=r"\(2, B, D\)"):
        gsg_cases(torch.randn(3, 4, 5), torch.randn(3, 4, 5))
    with pytest.raises(ValueError, match="unknown GSG mode 'closest'"):
        gsg(*_pz(), *_pz(), mode="closest")
