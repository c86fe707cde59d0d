import runpy
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_custom_loop_runs(monkeypatch, capsys):
    # width 8: on AVX2-only CPUs oneDNN hangs in the weight gradient of the channels-last strided 1x1
    # convolution from 4 to 8 channels (torch 2.13), which width 4 would hit
    monkeypatch.setattr(sys, "argv", ["custom_loop.py", "--epochs", "1", "--width", "8", "--max-steps", "3"])
    runpy.run_path(str(EXAMPLES / "custom_loop.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "epoch 1: loss" in out and "1-NN accuracy" in out


@pytest.mark.parametrize(
    ("script", "argv", "expect"),
    [
        ("custom_method.py", ["--epochs", "1", "--width", "4", "--subset", "128"], "simsiam-3view after 1 epochs"),
        ("custom_backbone.py", ["--epochs", "1", "--width", "4", "--subset", "128"], "small_cnn (16-d) after 1"),
        ("custom_dataset.py", ["--epochs", "1", "--width", "4", "--subset", "128"], "flipped-digits after 1"),
        ("custom_evaluation.py", ["--checkpoint", "random:resnet10_cifar:4"], "nearest-centroid top-1"),
    ],
)
def test_extension_examples_run(script, argv, expect, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [script, *argv])
    runpy.run_path(str(EXAMPLES / script), run_name="__main__")
    out = capsys.readouterr().out
    assert expect in out
    if script == "custom_evaluation.py":  # the library call and the command print the same number
        lines = [line for line in out.splitlines() if line.startswith("nearest-centroid")]
        assert len(lines) == 2 and lines[0] == lines[1]
