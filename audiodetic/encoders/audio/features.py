"""ImageBind's audio input contract: 16 kHz, three 2-s clips, Kaldi log-mel filterbanks, (3, 1, 128, 204).

The pipeline reproduces ``imagebind.data.load_and_transform_audio_data`` with its defaults, step by step:

1. resample to 16 kHz with windowed-sinc interpolation (:func:`resample`: the semantics of
   ``torchaudio.functional.resample`` with ``sinc_interp_hann``, 6 zero crossings, roll-off 0.99);
2. three 2-s clips spaced evenly over the file, as pytorchvideo's ``ConstantClipsPerVideoSampler`` places them
   with exact fractions (:func:`clip_bounds`); clips shorter than 2 s when the audio is;
3. per clip: subtract the clip mean, 128-bin Kaldi fbank of the first channel (:func:`kaldi_fbank`, the semantics
   of ``torchaudio.compliance.kaldi.fbank`` with 25 ms Hanning frames every 10 ms, htk-compatible, no dither),
   transpose, zero-pad or crop to 204 frames, normalise with mean -4.268 and std 9.138.

**In-place mean subtraction.** Upstream subtracts each clip's mean *in place on a view* of the waveform. Audio
shorter than 6 s has overlapping clips, so a later clip sees samples already shifted by an earlier clip's mean.
In effect a later clip carries a step of the earlier clip's mean where the overlap ends. ``upstream_inplace=True``
(default) reproduces that exactly, so embeddings equal what the released model was used with;
``upstream_inplace=False`` gives every clip its own copy (the order-independent reading of the recipe). The two
differ only for audio shorter than 6 s and only in clips 2 and 3: by ~1e-2 in the normalised features for
zero-mean audio, but by more than 1 in the frames around the step for audio with a DC offset (0.3 measured).

**Long files** are not decoded whole: :func:`load_imagebind_audio` reads only the frames each clip needs (plus
the resampling filter's margin, aligned so the resampled samples equal those of the whole-file resampling).

Silent audio is not an error: every frame's energy floors at float32 eps, giving constant features
(``(log(eps) + 4.268) / 9.138``) and a valid embedding. The only deviation from upstream is on input upstream
cannot handle: audio shorter than one 25 ms analysis frame after resampling (upstream crashes) raises
:class:`~audiodetic.errors.AudioDecodeError`.
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction
from typing import Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from audiodetic.encoders.audio.io import AudioReader, AudioSource
from audiodetic.errors import AudioDecodeError, InputError

SAMPLE_RATE = 16_000
CLIP_SECONDS = 2
CLIPS_PER_SOURCE = 3
NUM_MEL_BINS = 128
TARGET_FRAMES = 204
FEATURE_MEAN = -4.268
FEATURE_STD = 9.138
FRAME_LENGTH = 400  # 25 ms at 16 kHz
FRAME_SHIFT = 160  # 10 ms
N_FFT = 512
PREEMPHASIS = 0.97
LOW_FREQ_HZ = 20.0
_FLOAT32_EPS = float(torch.finfo(torch.float32).eps)
_LOWPASS_ZEROS = 6
_ROLLOFF = 0.99
_MAX_KERNEL_ELEMENTS = 1 << 22  # resampling kernels above this are built and applied in phase blocks


# ----------------------------------------------------------------------------------------------- resampling
def _reduced_rates(orig: int, new: int) -> tuple[int, int]:
    g = math.gcd(orig, new)
    return orig // g, new // g


def _kernel_halfwidth(orig: int, new: int) -> int:
    """Filter half-width in input samples for reduced rates ``orig -> new``."""
    return math.ceil(_LOWPASS_ZEROS * orig / (min(orig, new) * _ROLLOFF))


def _filter_weights(relative_taps: torch.Tensor, phases: torch.Tensor, orig: int, new: int) -> torch.Tensor:
    """Filter weight of input offset ``relative_taps`` (int) for output ``phases`` (int), float32, broadcast."""
    cutoff = min(orig, new) * _ROLLOFF
    # float32 throughout and in this order of operations, as torchaudio builds its kernel for float32 input.
    t = (-phases.to(torch.float32) / new + relative_taps.to(torch.float32) / orig) * cutoff
    t = t.clamp(-_LOWPASS_ZEROS, _LOWPASS_ZEROS)
    hann = torch.cos(t * math.pi / _LOWPASS_ZEROS / 2) ** 2
    t = t * math.pi
    sinc = torch.where(t == 0, torch.ones_like(t), t.sin() / t)
    return sinc * (hann * (cutoff / orig))


@functools.lru_cache(maxsize=8)
def _polyphase_kernel(orig: int, new: int) -> torch.Tensor:
    """All phases' filters for reduced rates ``orig -> new``: float32 ``(new, 1, 2 * pad + orig)``."""
    pad = _kernel_halfwidth(orig, new)
    taps = torch.arange(-pad, pad + orig)[None, :]
    return _filter_weights(taps, torch.arange(new)[:, None], orig, new)[:, None, :]


def _resample_untrimmed(waveform: torch.Tensor, orig: int, new: int) -> torch.Tensor:
    """Resample float32 ``(C, n)`` (reduced rates ``orig -> new``) -> ``(C, (n // orig + 1) * new)``, untrimmed.

    Output ``k * new + p`` is the filter of phase ``p`` applied to the input around ``k * orig`` (zero padded).
    """
    pad = _kernel_halfwidth(orig, new)
    channels, length = waveform.shape
    if new * (2 * pad + orig) <= _MAX_KERNEL_ELEMENTS:  # the common rates: one strided convolution
        padded = F.pad(waveform[:, None, :], (pad, pad + orig))
        out = F.conv1d(padded, _polyphase_kernel(orig, new), stride=orig)  # (C, new, blocks)
        return out.transpose(1, 2).reshape(channels, -1)
    # Nearly coprime rates (e.g. 44101 Hz): the dense kernel would take gigabytes and is zero outside +-pad
    # taps of each phase's centre, so gather those taps only.
    outputs = torch.arange((length // orig + 1) * new)
    block, phase = outputs // new, outputs % new
    relative = ((phase * orig) // new)[:, None] - pad + torch.arange(2 * pad + 2)[None, :]
    index = block[:, None] * orig + relative
    valid = (relative >= -pad) & (relative < pad + orig) & (index >= 0) & (index < length)
    weights = torch.where(valid, _filter_weights(relative, phase[:, None], orig, new), 0.0)
    return (waveform[:, index.clamp(0, length - 1)] * weights).sum(dim=-1)


def resampled_length(num_samples: int, orig_rate: int, new_rate: int = SAMPLE_RATE) -> int:
    """Length of ``num_samples`` resampled ``orig_rate -> new_rate`` (torchaudio's rule, float32 ceil)."""
    if orig_rate == new_rate:
        return num_samples
    orig, new = _reduced_rates(orig_rate, new_rate)
    return int(np.ceil(np.float32(new * num_samples / orig)))


def resample(waveform: torch.Tensor, orig_rate: int, new_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """Band-limited resampling of float32 ``(..., n)`` -> ``(..., resampled_length(n))``.

    Same filter and output as ``torchaudio.functional.resample(waveform, orig_rate, new_rate)`` with its defaults.
    """
    if orig_rate == new_rate:
        return waveform
    if orig_rate <= 0 or new_rate <= 0:
        raise InputError(f"sample rates must be positive, got {orig_rate} -> {new_rate}")
    orig, new = _reduced_rates(int(orig_rate), int(new_rate))
    shape = waveform.shape
    flat = waveform.reshape(-1, shape[-1])
    out = _resample_untrimmed(flat, orig, new)[:, : resampled_length(shape[-1], orig_rate, new_rate)]
    return out.reshape(*shape[:-1], out.shape[-1])


def _read_resampled(reader: AudioReader, lo: int, hi: int) -> torch.Tensor:
    """Samples ``[lo, hi)`` of the whole source resampled to 16 kHz, reading only the frames they depend on."""
    rate = reader.info.sample_rate
    if rate == SAMPLE_RATE:
        return torch.from_numpy(reader.read(lo, hi).copy())
    orig, new = _reduced_rates(rate, SAMPLE_RATE)
    pad = _kernel_halfwidth(orig, new)
    first_block, end_block = lo // new, (hi - 1) // new + 1
    # Start on a multiple of `orig` so the segment's filter phases line up with the whole-file ones.
    start = max(0, (first_block - math.ceil(pad / orig)) * orig)
    stop = end_block * orig + pad + orig
    segment = torch.from_numpy(reader.read(start, stop).copy())
    out = _resample_untrimmed(segment, orig, new)
    offset = (start // orig) * new
    return out[:, lo - offset : hi - offset]


# ------------------------------------------------------------------------------------------- clip sampling
def clip_bounds(
    num_samples: int, *, sample_rate: int = SAMPLE_RATE, clip_seconds: int = CLIP_SECONDS, clips: int = CLIPS_PER_SOURCE
) -> list[tuple[int, int]]:
    """Sample ranges ``[(start, stop), ...]`` of ``clips`` clips of ``clip_seconds`` spread evenly over the audio.

    Starts are ``i * max(duration - clip_seconds, 0) / (clips - 1)`` seconds in exact fractions of the float
    duration (pytorchvideo's ``ConstantClipsPerVideoSampler``); stops are clamped to ``num_samples``.
    """
    duration = num_samples / sample_rate
    latest_start = Fraction(max(duration - clip_seconds, 0))
    spacing = Fraction(latest_start, max(clips - 1, 1))
    bounds = []
    for i in range(clips):
        start = spacing * i
        lo, hi = int(start * sample_rate), int((start + clip_seconds) * sample_rate)
        bounds.append((lo, min(hi, num_samples)))
    return bounds


# ------------------------------------------------------------------------------------------------- fbank
@functools.lru_cache(maxsize=4)
def mel_filterbank(num_mel_bins: int = NUM_MEL_BINS, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """Kaldi triangular mel filters (HTK mel scale, 20 Hz..Nyquist): float32 ``(num_mel_bins, N_FFT // 2 + 1)``."""

    def mel(freq: float | torch.Tensor) -> float | torch.Tensor:
        if isinstance(freq, torch.Tensor):
            return 1127.0 * torch.log(1.0 + freq / 700.0)
        return 1127.0 * math.log(1.0 + freq / 700.0)

    low, high = mel(LOW_FREQ_HZ), mel(0.5 * sample_rate)
    delta = (high - low) / (num_mel_bins + 1)
    index = torch.arange(num_mel_bins).unsqueeze(1)
    left, centre, right = low + index * delta, low + (index + 1.0) * delta, low + (index + 2.0) * delta
    bins = mel((sample_rate / N_FFT) * torch.arange(float(N_FFT // 2))).unsqueeze(0)
    rising = (bins - left) / (centre - left)
    falling = (right - bins) / (right - centre)
    weights = torch.clamp_min(torch.minimum(rising, falling), 0.0)
    return F.pad(weights, (0, 1))


def kaldi_fbank(signal: torch.Tensor, *, num_mel_bins: int = NUM_MEL_BINS) -> torch.Tensor:
    """Log mel energies of a 16 kHz float32 signal ``(n,)`` -> ``(1 + (n - 400) // 160, num_mel_bins)``.

    25 ms frames every 10 ms (edges snipped), per-frame DC removal, pre-emphasis 0.97, symmetric Hann window,
    512-point power spectrum, ``log(max(energy, float32 eps))``.
    """
    if signal.ndim != 1 or signal.shape[0] < FRAME_LENGTH:
        raise AudioDecodeError(
            f"fbank needs a 1-D signal of at least {FRAME_LENGTH} samples (25 ms at 16 kHz), "
            f"got shape {tuple(signal.shape)}"
        )
    frames = signal.unfold(0, FRAME_LENGTH, FRAME_SHIFT)
    frames = frames - frames.mean(dim=1, keepdim=True)
    previous = torch.cat([frames[:, :1], frames[:, :-1]], dim=1)
    frames = frames - PREEMPHASIS * previous
    frames = frames * torch.hann_window(FRAME_LENGTH, periodic=False, dtype=signal.dtype)
    frames = F.pad(frames, (0, N_FFT - FRAME_LENGTH))
    power = torch.fft.rfft(frames).abs().pow(2.0)
    energies = torch.mm(power, mel_filterbank(num_mel_bins).to(signal.dtype).T)
    return torch.clamp_min(energies, _FLOAT32_EPS).log()


def _clip_features(clip: torch.Tensor, downmix: bool) -> torch.Tensor:
    """Zero-mean clip float32 ``(C, n)`` -> normalised log-mel ``(1, 128, 204)``."""
    mono = clip.mean(dim=0) if downmix else clip[0]
    fbank = kaldi_fbank(mono).T
    frames = fbank.shape[1]
    fbank = F.pad(fbank, (0, TARGET_FRAMES - frames)) if frames < TARGET_FRAMES else fbank[:, :TARGET_FRAMES]
    mean = torch.tensor(FEATURE_MEAN, dtype=fbank.dtype)
    std = torch.tensor(FEATURE_STD, dtype=fbank.dtype)
    return ((fbank - mean) / std).unsqueeze(0)


def _features_from_reader(reader: AudioReader, downmix: bool, upstream_inplace: bool) -> torch.Tensor:
    info = reader.info
    total = resampled_length(info.frames, info.sample_rate)
    if total < FRAME_LENGTH:
        raise AudioDecodeError(
            f"{reader.name}: {info.duration * 1000:.1f} ms of audio is shorter than one 25 ms analysis frame"
        )
    bounds = clip_bounds(total)
    # Overlapping clips are cut from one shared block so in-place mean subtraction carries over like upstream's.
    groups: list[list[tuple[int, int]]] = []
    for lo, hi in bounds:
        if groups and lo < max(h for _, h in groups[-1]):
            groups[-1].append((lo, hi))
        else:
            groups.append([(lo, hi)])
    outputs = []
    for group in groups:
        g_lo, g_hi = group[0][0], max(h for _, h in group)
        block = _read_resampled(reader, g_lo, g_hi).to(torch.float32)
        for lo, hi in group:
            view = block[:, lo - g_lo : hi - g_lo]
            if view.shape[1] < FRAME_LENGTH:  # the header promised more frames than the decoder delivered
                raise AudioDecodeError(
                    f"{reader.name}: decoding stopped early (the header claims {info.duration:.2f} s, nothing "
                    f"decodable at {lo / SAMPLE_RATE:.2f} s); the file is truncated or corrupt"
                )
            if upstream_inplace:
                view -= view.mean()
                clip = view
            else:
                clip = view - view.mean()
            outputs.append(_clip_features(clip, downmix))
    return torch.stack(outputs)


def imagebind_audio_input(
    waveform: np.ndarray | torch.Tensor, sample_rate: int, *, downmix: bool = False, upstream_inplace: bool = True
) -> torch.Tensor:
    """ImageBind input of one waveform: float32 ``(3, 1, 128, 204)`` (clips, channel, mel bins, frames).

    ``waveform``: 1-D or 2-D samples at ``sample_rate`` Hz (see :mod:`audiodetic.encoders.audio.io` for the axis rule;
    not modified). ``downmix=False`` uses the first channel as upstream does; ``True`` averages all channels.
    ``upstream_inplace``: see the module doc.
    """
    with AudioReader((waveform, sample_rate)) as reader:
        return _features_from_reader(reader, downmix, upstream_inplace)


def load_imagebind_audio(source: AudioSource, *, downmix: bool = False, upstream_inplace: bool = True) -> torch.Tensor:
    """ImageBind input of one audio source (path, bytes, file object or ``(waveform, rate)``): ``(3, 1, 128, 204)``.

    Reads only the frames the three clips need; raises :class:`~audiodetic.errors.AudioDecodeError` on bad audio.
    """
    with AudioReader(source) as reader:
        return _features_from_reader(reader, downmix, upstream_inplace)


def imagebind_audio_batch(
    sources: Iterable[AudioSource] | Sequence[AudioSource], *, downmix: bool = False, upstream_inplace: bool = True
) -> torch.Tensor:
    """Stack :func:`load_imagebind_audio` of each source: float32 ``(B, 3, 1, 128, 204)``."""
    items = [load_imagebind_audio(s, downmix=downmix, upstream_inplace=upstream_inplace) for s in sources]
    if not items:
        raise InputError("no audio sources given")
    return torch.stack(items)
