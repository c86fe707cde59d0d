import pytest
import torch

from reference import gsg_loop
from siamkit.methods import METHODS, resolve_method
from siamkit.models import ModelConfig, MomentumTarget, SiameseNet, tau_at
from siamkit.train import collapse_std, step

TINY = dict(backbone="resnet10_cifar", width=4, proj_dim=16, proj_hidden=16, pred_hidden=8)
CASES = [(name, pred) for name in sorted(METHODS) for pred in (True, False)]


def _setup(spec, b=8):
    net = SiameseNet(ModelConfig(**TINY), predictor=spec.predictor)
    target = MomentumTarget(net) if spec.target == "momentum" else None
    views = torch.randn(spec.views_drawn, b, 3, 16, 16)
    return net, target, views


@pytest.mark.parametrize(("name", "pred"), CASES, ids=[f"{n}{'' if p else '-nopred'}" for n, p in CASES])
def test_every_method_trains_two_steps(name, pred):
    spec = resolve_method(name, predictor=pred)
    net, target, views = _setup(spec)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    gen = torch.Generator().manual_seed(0)
    for k in range(2):
        before = [q.clone() for q in target.parameters()] if target else []
        loss, metrics = step(net, spec, views, target, generator=gen)
        assert torch.isfinite(loss) and loss.dtype == torch.float32
        assert -1.0 <= loss.item() <= 1.0
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        assert all(not isinstance(v, torch.Tensor) or not v.requires_grad for v in metrics.values())
        assert metrics["loss"].item() == pytest.approx(loss.item())
        if spec.objective == "guided":
            shares = torch.stack([metrics[f"case{i}"] for i in range(4)])
            assert shares.sum().item() == pytest.approx(1.0)
        if target is not None:
            assert all(q.grad is None for q in target.parameters())
            # the target has not moved through backward or the optimizer, only by update()
            assert all(torch.equal(a, b) for a, b in zip(before, target.parameters(), strict=True))
            target.update(net, tau_at(spec.tau_schedule, spec.tau, k, 2))
            assert any(not torch.equal(a, b) for a, b in zip(before, target.parameters(), strict=True))


def test_gsg_step_matches_algorithm_1():
    spec = resolve_method("simsiam-gsg")
    net, _, views = _setup(spec, b=16)
    loss, metrics = step(net, spec, views, generator=torch.Generator().manual_seed(3))
    perm = torch.randperm(16, generator=torch.Generator().manual_seed(3))  # the step's first draw
    with torch.no_grad():
        z, p = net(views)
    ref, cases = gsg_loop(p[:2], z[:2], p[2:][:, perm], z[2:][:, perm])
    assert loss.item() == pytest.approx(ref, abs=1e-5)
    for i in range(4):
        assert metrics[f"case{i}"].item() == pytest.approx(cases.count(i) / 16)


def test_byol_gsg_measures_distances_on_the_momentum_encoder():
    spec = resolve_method("byol-gsg")
    net, target, views = _setup(spec, b=16)
    with torch.no_grad():
        for q in target.parameters():
            q.mul_(-1.5)  # make the target clearly different from the online network
    loss, _ = step(net, spec, views, target, generator=torch.Generator().manual_seed(3))
    perm = torch.randperm(16, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        _, p = net(views)
        zt = target(views)
    ref, _ = gsg_loop(p[:2], zt[:2], p[2:][:, perm], zt[2:][:, perm])
    assert loss.item() == pytest.approx(ref, abs=1e-5)


def test_shared_views_reuse_the_partners_own_views():
    spec = resolve_method("simsiam-gsg", shared_views=True)
    net, _, views = _setup(spec, b=16)
    loss, _ = step(net, spec, views, generator=torch.Generator().manual_seed(5))
    perm = torch.randperm(16, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        z, p = net(views)
    ref, _ = gsg_loop(p, z, p[:, perm], z[:, perm])
    assert loss.item() == pytest.approx(ref, abs=1e-5)


def test_no_gradient_flows_through_the_target_branch():
    # SimSiam: the loss's gradient equals that of the loss with z explicitly detached (sg inside).
    spec = resolve_method("simsiam")
    net, _, views = _setup(spec)
    loss, _ = step(net, spec, views)
    g = torch.autograd.grad(loss, list(net.parameters()))
    z, p = net(views)
    from siamkit.losses import simsiam

    g_ref = torch.autograd.grad(simsiam(p, z.detach()), list(net.parameters()))
    for a, b in zip(g, g_ref, strict=True):
        torch.testing.assert_close(a, b)


def test_collapse_std():
    d = 64
    healthy = torch.randn(4096, d)
    assert collapse_std(healthy).item() == pytest.approx(d**-0.5, rel=0.05)
    collapsed = torch.randn(1, d).expand(100, d) + 1e-6 * torch.randn(100, d)
    assert collapse_std(collapsed).item() < 1e-4


def test_step_rejects_wrong_views_and_targets():
    spec = resolve_method("simsiam-gsg")
    net, _, _ = _setup(spec)
    with pytest.raises(ValueError, match=r"expected views of shape \(V=4"):
        step(net, spec, torch.randn(2, 4, 3, 16, 16))
    with pytest.raises(ValueError, match="needs a momentum target"):
        step(net, resolve_method("byol"), torch.randn(2, 4, 3, 16, 16))


@pytest.mark.parametrize("name", ["simsiam", "byol", "ensiam"])
def test_small_crops_predict_and_never_give_targets(name):
    """Multi-crop: the loss is the objective over predictions of all views and small crops, with
    targets from the full-size views only; a momentum target never encodes the small crops."""
    from siamkit.losses import ensemble, simsiam

    spec = resolve_method(name)
    net, target, views = _setup(spec)
    local = torch.randn(3, views.shape[1], 3, 8, 8)
    seen = []
    if target is not None:
        target.register_forward_pre_hook(lambda _m, args: seen.append(args[0].shape))
    loss, _ = step(net, spec, views, target, local=local)
    with torch.no_grad():
        z, _ = net(views)
        _, p_local = net(local[:1])  # per-view BatchNorm: each small crop alone, as in the step
        z_all, p_all = net(views, local)
        zt = target(views) if target is not None else z
    assert z_all.shape[0] == p_all.shape[0] == views.shape[0] + 3
    torch.testing.assert_close(p_all[views.shape[0]], p_local[0])
    objective = ensemble if spec.objective == "ensemble" else simsiam
    assert loss.item() == pytest.approx(objective(p_all, zt).item(), abs=1e-5)
    assert all(shape == views.shape for shape in seen)


def test_gsg_refuses_small_crops():
    spec = resolve_method("simsiam-gsg")
    net, _, views = _setup(spec)
    with pytest.raises(ValueError, match="takes no small crops"):
        step(net, spec, views, local=torch.randn(2, views.shape[1], 3, 8, 8))
