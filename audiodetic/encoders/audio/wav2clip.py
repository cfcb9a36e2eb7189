"""Wav2CLIP audio encoder (Wu et al. 2022, MIT licence): raw 16 kHz audio -> 512-d CLIP ViT-B/32 image space.

Architecture (as in the released ``lyrebird-wav2clip`` code; torchvision's ``BasicBlock``):

1. power spectrogram: STFT with ``n_fft = 512``, window 512 (periodic Hann), hop 353, centred with reflect padding,
   ``|X|^2`` -> ``(1, 257, frames)``;
2. ``log(S + 1e-7)``, then standardised by the mean and (unbiased) standard deviation of the whole input;
3. ResNet-18 (BasicBlock ``[2, 2, 2, 2]``, widths 64..512) with a 1-channel 7x7/2 stem, max-pool, global average
   pool -> 512;
4. ``transform`` MLP ``Linear(512, 512) -> ReLU -> Dropout -> Linear(512, 512)`` into CLIP's image-embedding space
   (the released model was trained so this output matches CLIP ViT-B/32 image embeddings).

Outputs are raw (not normalised). CLIP's image and text spaces are joint, so Wav2CLIP embeddings can prompt the
detector without a bridge (``space = "clip-vit-b32-image"``, see :mod:`audiodetic.prompts`).

Upstream standardises with statistics of the whole batch; here every clip is encoded on its own (batch of one), which
is also what upstream's per-file ``embed_audio`` does. Audio is resampled to 16 kHz (the training rate) and
down-mixed to mono by averaging channels (``downmix=False``: first channel).

Checkpoint layout (``Wav2CLIP.pt``, a flat state dict): ``audio_encoder.<resnet key>`` (plus the spectrogram's
``audio_encoder.spectrogram.window`` buffer, ignored) and ``audio_transform.sequential.{0,3}.{weight,bias}``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from audiodetic.errors import AudioDecodeError, CheckpointError, InputError
from audiodetic.spaces import CLIP_IMAGE_SPACE

SAMPLE_RATE = 16_000
N_FFT = 512
HOP_LENGTH = 353


@dataclass(frozen=True)
class Wav2ClipConfig:
    """ResNet widths (``width`` of the first stage; stages double) and the output width."""

    width: int = 64
    blocks: tuple[int, int, int, int] = (2, 2, 2, 2)
    out_dim: int = 512

    @classmethod
    def released(cls) -> "Wav2ClipConfig":
        return cls()

    @classmethod
    def tiny(cls) -> "Wav2ClipConfig":
        """Small random model for tests (stage widths 8..64, one block each, 512-d output)."""
        return cls(width=8, blocks=(1, 1, 1, 1), out_dim=512)


def _stage(inplanes: int, planes: int, blocks: int, stride: int) -> nn.Sequential:
    from torchvision.models.resnet import BasicBlock

    downsample = None
    if stride != 1 or inplanes != planes:
        downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
    layers = [BasicBlock(inplanes, planes, stride, downsample)]
    layers += [BasicBlock(planes, planes) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class AudioResNet(nn.Module):
    """ResNet-18-style trunk on a 1-channel spectrogram ``(B, 1, F, T)`` -> ``(B, 8 * width)`` (torchvision names)."""

    def __init__(self, width: int = 64, blocks: Sequence[int] = (2, 2, 2, 2)) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = _stage(width, width, blocks[0], 1)
        self.layer2 = _stage(width, 2 * width, blocks[1], 2)
        self.layer3 = _stage(2 * width, 4 * width, blocks[2], 2)
        self.layer4 = _stage(4 * width, 8 * width, blocks[3], 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return x.mean(dim=(2, 3))


class Wav2ClipEncoder(nn.Module):
    """Wav2CLIP: waveform ``(samples,)`` at 16 kHz -> ``(512,)``; :meth:`encode_sources` for files and arrays."""

    space = CLIP_IMAGE_SPACE

    def __init__(self, config: Wav2ClipConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or Wav2ClipConfig.released()
        self.encoder = AudioResNet(config.width, config.blocks)
        feature_dim = config.width * 8
        self.transform = nn.Sequential(nn.Linear(feature_dim, 512), nn.ReLU(), nn.Dropout(0.1),
                                       nn.Linear(512, config.out_dim))
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)
        self.eval()

    @property
    def embed_dim(self) -> int:
        return int(self.config.out_dim)

    @property
    def fingerprint(self) -> str:
        cached = getattr(self, "_fingerprint", None)
        if cached is None:
            digest = hashlib.sha256(repr(self.config).encode())
            for name, tensor in sorted(self.state_dict().items()):
                digest.update(name.encode())
                digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
            cached = self._fingerprint = "wav2clip-" + digest.hexdigest()
        return cached

    # ------------------------------------------------------------------------------------------------ loading
    @classmethod
    def tiny(cls, seed: int | None = None) -> "Wav2ClipEncoder":
        if seed is not None:
            torch.manual_seed(seed)
        return cls(Wav2ClipConfig.tiny())

    @classmethod
    def from_state_dict(cls, state: Mapping[str, torch.Tensor], *, source: str = "state dict") -> "Wav2ClipEncoder":
        """Build from the released layout (``audio_encoder.*``, ``audio_transform.sequential.*``)."""
        if "audio_encoder.conv1.weight" not in state or "audio_transform.sequential.3.weight" not in state:
            raise CheckpointError(f"{source} is not a Wav2CLIP checkpoint (no audio_encoder/audio_transform tensors)")
        width = int(state["audio_encoder.conv1.weight"].shape[0])
        blocks = tuple(len({k.split(".")[2] for k in state if k.startswith(f"audio_encoder.layer{i}.")})
                       for i in range(1, 5))
        config = Wav2ClipConfig(width=width, blocks=blocks,  # type: ignore[arg-type]
                                out_dim=int(state["audio_transform.sequential.3.weight"].shape[0]))
        model = cls(config)
        ours = model.state_dict()
        mapped = {}
        for key, value in state.items():
            if key.startswith("audio_encoder.") and not key.startswith("audio_encoder.spectrogram."):
                mapped["encoder." + key[len("audio_encoder."):]] = value
            elif key.startswith("audio_transform.sequential."):
                mapped["transform." + key[len("audio_transform.sequential."):]] = value
        missing = sorted(set(ours) - set(mapped))
        unexpected = sorted(set(mapped) - set(ours))
        bad = [k for k in set(ours) & set(mapped) if tuple(ours[k].shape) != tuple(mapped[k].shape)]
        if missing or unexpected or bad:
            raise CheckpointError(f"{source}: Wav2CLIP tensors do not match (missing {missing[:4]}, unexpected "
                                  f"{unexpected[:4]}, wrong shape {bad[:4]})")
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in mapped.items()})
        return model.eval()

    @classmethod
    def from_checkpoint(cls, path_or_name: str | os.PathLike[str] = "wav2clip") -> "Wav2ClipEncoder":
        """Load ``Wav2CLIP.pt`` from a path or a known weights name."""
        from audiodetic.weights import load_state_dict, resolve

        path = resolve(path_or_name)
        return cls.from_state_dict(load_state_dict(path, map_location="cpu"), source=repr(os.fspath(path)))

    # ---------------------------------------------------------------------------------------------- encoding
    def features(self, waveform: torch.Tensor) -> torch.Tensor:
        """Standardised log power spectrogram ``(1, 1, 257, frames)`` of a mono 16 kHz waveform ``(samples,)``."""
        spec = torch.stft(waveform.float(), N_FFT, hop_length=HOP_LENGTH, win_length=N_FFT, window=self.window,
                          center=True, pad_mode="reflect", normalized=False, onesided=True, return_complex=True)
        x = torch.log(spec.abs() ** 2 + 1e-7)
        return ((x - x.mean()) / (x.std() + 1e-9))[None, None]

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        """Raw embedding ``(512,)`` of one mono 16 kHz waveform ``(samples,)`` (at least 257 samples)."""
        return self.transform(self.encoder(self.features(waveform)))[0]

    @torch.inference_mode()
    def encode_sources(self, sources: Sequence[Any], *, downmix: bool = True) -> torch.Tensor:
        """Raw embeddings ``(A, 512)`` float32 of audio sources (paths, bytes, file objects, ``(waveform, rate)``)."""
        from audiodetic.encoders.audio.features import resample
        from audiodetic.encoders.audio.io import load_audio

        sources = list(sources)
        if not sources:
            raise InputError("no audio sources given")
        out = []
        for source in sources:
            samples, rate = load_audio(source)
            mono = samples.mean(axis=0) if downmix else samples[0]
            wave = resample(torch.from_numpy(mono)[None], rate, SAMPLE_RATE)[0] if rate != SAMPLE_RATE else \
                torch.from_numpy(mono)
            if wave.numel() <= N_FFT // 2:
                raise AudioDecodeError(f"audio is too short for Wav2CLIP ({wave.numel()} samples at 16 kHz; "
                                       f"need more than {N_FFT // 2})")
            out.append(self(wave.to(self.window.device)).float().cpu())
        return torch.stack(out)
