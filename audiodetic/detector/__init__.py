"""Detic's inference graph in plain PyTorch (backbones, FPN, CenterNet proposals, cascade heads)."""
