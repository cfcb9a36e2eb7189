"""Random weights in the released ``Wav2CLIP.pt`` layout, built with torchvision's ResNet-18 (an independent
rebuild of the recipe, used as the reference in tests)."""

from __future__ import annotations

import torch
from torch import nn


def released_wav2clip_layout(seed: int = 0) -> tuple[dict[str, torch.Tensor], nn.Module, nn.Module]:
    """Random weights in Wav2CLIP.pt's layout, plus the torchvision/torch modules holding them."""
    import torchvision

    torch.manual_seed(seed)
    resnet = torchvision.models.resnet18()
    resnet.conv1 = nn.Conv2d(1, 64, 7, 2, 3, bias=False)
    resnet.fc = nn.Identity()
    for module in resnet.modules():  # non-trivial batch-norm statistics
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.normal_(0, 0.1)
            module.running_var.uniform_(0.5, 1.5)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.normal_(0, 0.1)
    mlp = nn.Sequential(nn.Linear(512, 512), nn.ReLU(), nn.Dropout(0.1), nn.Linear(512, 512))
    state = {f"audio_encoder.{k}": v for k, v in resnet.state_dict().items()}
    state["audio_encoder.spectrogram.window"] = torch.hann_window(512)
    state.update({f"audio_transform.sequential.{k}": v for k, v in mlp.state_dict().items()})
    return state, resnet.eval(), mlp.eval()
