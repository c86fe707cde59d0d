import math

import pytest
import torch

from siamkit.config import OptimConfig
from siamkit.models import ModelConfig, SiameseNet
from siamkit.train.optim import LARS, build_optimizer, lr_at, set_lr


def test_lr_schedules_by_hand():
    const = OptimConfig(lr=0.06)
    assert lr_at(const, 0.06, 500, 100, 10) == 0.06
    cos = OptimConfig(schedule="cosine")
    assert lr_at(cos, 0.1, 0, 100, 10) == pytest.approx(0.1)
    assert lr_at(cos, 0.1, 500, 100, 10) == pytest.approx(0.05)
    assert lr_at(cos, 0.1, 250, 100, 10) == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi / 4)))
    warm = OptimConfig(schedule="cosine", warmup_epochs=2)
    assert lr_at(warm, 0.1, 0, 100, 10) == pytest.approx(0.1 / 200)
    assert lr_at(warm, 0.1, 199, 100, 10) == pytest.approx(0.1)
    assert lr_at(warm, 0.1, 600, 100, 10) == pytest.approx(0.05)  # halfway through the 8 decay epochs


def test_fixed_predictor_lr_keeps_the_base_rate():
    net = SiameseNet(ModelConfig(backbone="resnet10_cifar", width=4, proj_dim=8, proj_hidden=8, pred_hidden=4))
    opt = build_optimizer(net, OptimConfig(fixed_predictor_lr=True), base_lr=0.1)
    set_lr(opt, 0.01, base_lr=0.1)
    assert [g["lr"] for g in opt.param_groups] == [0.01, 0.1]
    n_pred = sum(1 for _ in net.predictor.parameters())
    assert len(opt.param_groups[1]["params"]) == n_pred


def test_lars_step_by_hand():
    w = torch.nn.Parameter(torch.tensor([[3.0, 4.0]]))  # |w| = 5
    b = torch.nn.Parameter(torch.tensor([1.0]))
    opt = LARS([w, b], lr=0.5, weight_decay=0.0, momentum=0.9, trust=0.01)
    w.grad = torch.tensor([[0.0, 2.0]])  # |g| = 2 -> trust ratio 0.01 * 5 / 2 = 0.025
    b.grad = torch.tensor([2.0])  # 1-d: plain SGD
    opt.step()
    torch.testing.assert_close(w.detach(), torch.tensor([[3.0, 4.0 - 0.5 * 0.025 * 2.0]]))
    torch.testing.assert_close(b.detach(), torch.tensor([1.0 - 0.5 * 2.0]))
