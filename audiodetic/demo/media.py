"""Example media for the demo, synthesised from code (so they are licence-clean and reproducible).

``write_example_media(directory)`` writes a small drawn street scene (``scene.png``, 320x240 RGB) and three
1.5-second 16 kHz mono 16-bit WAV sounds: ``siren.wav`` (a two-tone wail), ``birdsong.wav`` (rising chirps) and
``engine.wav`` (a low rumble). ``python -m audiodetic.demo.media DIR`` regenerates the files shipped in
``audiodetic/demo/examples/`` (package data); :func:`example_dir` finds them, or writes a copy where an install
lacks them.
"""

from __future__ import annotations

import sys
import tempfile
import wave
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SAMPLE_RATE = 16_000
SECONDS = 1.5
EXAMPLE_FILES = ("scene.png", "siren.wav", "birdsong.wav", "engine.wav")


def draw_scene(width: int = 320, height: int = 240) -> Image.Image:
    """A cartoon street: sky, sun, tree, road, a red car and a small bird (RGB ``PIL.Image``)."""
    image = Image.new("RGB", (width, height))
    pen = ImageDraw.Draw(image)
    horizon = int(height * 0.62)
    for y in range(horizon):  # sky gradient
        t = y / horizon
        pen.line([(0, y), (width, y)], fill=(int(90 + 80 * t), int(160 + 60 * t), 235))
    pen.rectangle([0, horizon, width, height], fill=(70, 140, 60))  # grass
    pen.rectangle([0, int(height * 0.78), width, int(height * 0.95)], fill=(70, 70, 75))  # road
    for x in range(10, width, 40):
        pen.rectangle([x, int(height * 0.86), x + 20, int(height * 0.87)], fill=(235, 235, 235))
    pen.ellipse([width - 70, 18, width - 30, 58], fill=(255, 215, 60))  # sun
    pen.rectangle([40, horizon - 50, 52, horizon + 10], fill=(110, 70, 40))  # tree trunk
    pen.ellipse([15, horizon - 110, 80, horizon - 40], fill=(40, 110, 45))
    body_top, body_bottom = int(height * 0.70), int(height * 0.84)
    pen.rounded_rectangle([120, body_top, 250, body_bottom], radius=8, fill=(200, 30, 35))  # car body
    pen.polygon([(145, body_top), (165, body_top - 25), (215, body_top - 25), (232, body_top)], fill=(200, 30, 35))
    pen.polygon([(152, body_top - 2), (168, body_top - 20), (188, body_top - 20), (188, body_top - 2)],
                fill=(180, 220, 240))
    pen.polygon([(194, body_top - 2), (194, body_top - 20), (212, body_top - 20), (225, body_top - 2)],
                fill=(180, 220, 240))
    for cx in (150, 222):  # wheels
        pen.ellipse([cx - 14, body_bottom - 12, cx + 14, body_bottom + 16], fill=(25, 25, 25))
        pen.ellipse([cx - 6, body_bottom - 4, cx + 6, body_bottom + 8], fill=(160, 160, 160))
    pen.ellipse([200, 60, 230, 78], fill=(60, 60, 160))  # bird body
    pen.polygon([(205, 66), (190, 50), (215, 64)], fill=(40, 40, 130))  # wing
    pen.polygon([(229, 68), (238, 71), (229, 73)], fill=(250, 170, 30))  # beak
    return image


def _envelope(samples: int, fade: int = 400) -> np.ndarray:
    envelope = np.ones(samples)
    ramp = np.linspace(0.0, 1.0, fade)
    envelope[:fade] = ramp
    envelope[-fade:] = ramp[::-1]
    return envelope


def siren(seed: int = 0) -> np.ndarray:
    """A wail between 650 and 1300 Hz, two cycles, with a faint noise floor (float32 in [-1, 1])."""
    t = np.arange(int(SECONDS * SAMPLE_RATE)) / SAMPLE_RATE
    frequency = 975 + 325 * np.sin(2 * np.pi * (2 / SECONDS) * t)
    phase = 2 * np.pi * np.cumsum(frequency) / SAMPLE_RATE
    wave_ = 0.6 * np.sin(phase) + 0.15 * np.sin(2 * phase)
    wave_ += 0.01 * np.random.default_rng(seed).normal(size=t.shape)
    return (wave_ * _envelope(t.size)).astype(np.float32)


def birdsong(seed: int = 1) -> np.ndarray:
    """Short chirps rising from 2.5 to 4.5 kHz, about six per second."""
    samples = int(SECONDS * SAMPLE_RATE)
    out = np.zeros(samples)
    rng = np.random.default_rng(seed)
    chirp_len = int(0.08 * SAMPLE_RATE)
    t = np.arange(chirp_len) / SAMPLE_RATE
    for start in range(int(0.05 * SAMPLE_RATE), samples - chirp_len, int(0.17 * SAMPLE_RATE)):
        f0 = 2500 + 300 * rng.random()
        frequency = f0 + (4500 - f0) * (t / t[-1]) ** 2
        phase = 2 * np.pi * np.cumsum(frequency) / SAMPLE_RATE
        out[start:start + chirp_len] += 0.5 * np.sin(phase) * np.hanning(chirp_len)
    return (out + 0.005 * rng.normal(size=samples)).astype(np.float32)


def engine(seed: int = 2) -> np.ndarray:
    """A 45 Hz rumble with harmonics, amplitude-modulated at 11 Hz, plus filtered noise."""
    t = np.arange(int(SECONDS * SAMPLE_RATE)) / SAMPLE_RATE
    rumble = sum(np.sin(2 * np.pi * 45 * k * t) / k for k in range(1, 8))
    rumble *= 0.6 + 0.4 * np.sin(2 * np.pi * 11 * t)
    noise = np.convolve(np.random.default_rng(seed).normal(size=t.size), np.ones(16) / 16, mode="same")
    wave_ = 0.25 * rumble + 0.3 * noise
    return (wave_ / np.max(np.abs(wave_)) * 0.7 * _envelope(t.size)).astype(np.float32)


def write_wav(path: Path, waveform: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Path:
    """Write a mono float waveform in [-1, 1] as 16-bit PCM WAV."""
    pcm = (np.clip(waveform, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(sample_rate)
        handle.writeframes(pcm.tobytes())
    return path


def write_example_media(directory: str | Path) -> dict[str, Path]:
    """Write the example files into ``directory`` (created if needed); returns ``{file name: path}``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {"scene.png": directory / "scene.png"}
    draw_scene().save(paths["scene.png"], optimize=True)
    for name, make in (("siren.wav", siren), ("birdsong.wav", birdsong), ("engine.wav", engine)):
        paths[name] = write_wav(directory / name, make())
    return paths


def example_dir() -> Path:
    """The example media shipped as package data, or a generated copy where the install lacks them."""
    shipped = Path(str(resources.files("audiodetic.demo").joinpath("examples")))
    if all((shipped / name).is_file() for name in EXAMPLE_FILES):
        return shipped
    directory = Path(tempfile.gettempdir()) / "audiodetic-demo-examples"
    if not all((directory / name).is_file() for name in EXAMPLE_FILES):
        write_example_media(directory)
    return directory


if __name__ == "__main__":
    default = Path(__file__).resolve().parent / "examples"
    for written in write_example_media(sys.argv[1] if len(sys.argv) > 1 else default).values():
        print(written)
