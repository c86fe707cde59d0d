"""Backbones as users write them, for ``--backbone tiny_backbones:NAME`` (tests put this folder on
the path). Small enough that a run of every method takes seconds."""

from torch import nn


def convnet(width: int = 8, pool: bool = True) -> nn.Module:
    """Two convolutions and, with ``pool``, global pooling to ``(B, 2 * width)`` features."""
    layers = [
        nn.Conv2d(3, width, 3, padding=1, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(2 * width),
        nn.ReLU(),
    ]
    if pool:
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers)


class StemNet(nn.Module):
    """A ResNet-style stem (``conv1`` 7x7 stride 2, ``maxpool``) and a pooled head, like torchvision's."""

    def __init__(self, width: int = 8):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width, 10)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.fc(self.pool(x).flatten(1))


def stemnet(width: int = 8) -> nn.Module:
    net = StemNet(width)
    net.fc = nn.Identity()
    return net


def not_a_module():
    return "features"
