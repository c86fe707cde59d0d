import runpy
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_custom_loop_runs(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["custom_loop.py", "--epochs", "1", "--width", "4", "--max-steps", "3"])
    runpy.run_path(str(EXAMPLES / "custom_loop.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "epoch 1: loss" in out and "1-NN accuracy" in out
