import pytest
import torch
import torch.nn.functional as F

from siamkit.evaluate import knn_accuracy, knn_predict


def knn_loop(train_f, train_y, test_f, k, temperature, num_classes):
    """Wu et al. 2018 / majority vote, one test sample at a time."""
    preds = []
    for x in test_f:
        sims = [(float(x @ t), int(y)) for t, y in zip(train_f, train_y, strict=True)]
        sims.sort(key=lambda s: -s[0])
        votes = [0.0] * num_classes
        for sim, y in sims[:k]:
            votes[y] += 1.0 if temperature is None else float(torch.exp(torch.tensor(sim / temperature)))
        preds.append(max(range(num_classes), key=lambda c: (votes[c], -c)))
    return torch.tensor(preds)


def test_knn_by_hand():
    train = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.8, 0.6]])
    labels = torch.tensor([0, 1, 1])
    test = torch.tensor([[0.9, 0.1]]) / torch.tensor([[0.9, 0.1]]).norm()
    assert knn_predict(train, labels, test, k=1, temperature=None).tolist() == [0]
    assert knn_predict(train, labels, test, k=3, temperature=None).tolist() == [1]  # two votes of three


@pytest.mark.parametrize(("k", "t"), [(1, None), (5, None), (20, 0.1), (7, 0.5)])
def test_knn_matches_loop(k, t):
    g = torch.Generator().manual_seed(0)
    train = F.normalize(torch.randn(200, 16, generator=g), dim=1)
    labels = torch.randint(0, 5, (200,), generator=g)
    test = F.normalize(torch.randn(50, 16, generator=g), dim=1)
    got = knn_predict(train, labels, test, k=k, temperature=t, num_classes=5, chunk=7)
    assert torch.equal(got, knn_loop(train, labels, test, k, t, 5))


def test_knn_accuracy_is_percent():
    f = F.normalize(torch.eye(4), dim=1)
    y = torch.arange(4)
    assert knn_accuracy(f, y, f, y, k=1, temperature=None) == 100.0
