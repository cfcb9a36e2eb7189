"""The Gradio page of the demo: upload a picture and some sounds, see where the things that make those sounds are.

:func:`build_demo` returns a queued ``gr.Blocks``: the prompt controls (:func:`prompt_controls`: sounds, their
names, a recording, texts, threshold, model) beside tabs of inputs and results, each tab built by its own function
(:func:`image_tab`, :func:`video_tab`) that wires its events to :class:`~audiodetic.demo.backend.DemoBackend`; a
tab's results are one dataclass of components (:class:`ImageTab`, :class:`VideoTab`) filled from one backend
result. Errors become messages in the page; the
server keeps serving. Importing this module imports Gradio.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import gradio as gr

from audiodetic.demo.backend import NAME_HEADERS, TABLE_HEADERS, DemoBackend, ImageResult, ModelSource, VideoResult
from audiodetic.demo.media import example_dir
from audiodetic.demo.uploads import UploadLimits, name_rows, short_paths
from audiodetic.errors import AudiodeticError, InputError
from audiodetic.inputs import format_size
from audiodetic.model import AudiodeticModel

LOG = logging.getLogger("audiodetic.demo")
FILES_MAX_AGE_S = 2 * 3600
"""Gradio's copies of uploads and results older than this (seconds) are deleted, checked every hour."""


@dataclass(frozen=True)
class PromptControls:
    """The controls every tab's detection reads (Gradio components)."""

    sounds: Any
    names: Any
    recording: Any
    recording_name: Any
    texts: Any
    threshold: Any
    model_name: Any

    @property
    def inputs(self) -> list[Any]:
        """The controls in the order the backend's handlers take them."""
        return [self.sounds, self.names, self.recording, self.recording_name, self.texts, self.threshold,
                self.model_name]


@dataclass(frozen=True)
class ImageTab:
    """The image tab's input, button and result components."""

    image: Any
    button: Any
    annotated: Any
    heard_as: Any
    table: Any
    json_file: Any

    @property
    def outputs(self) -> list[Any]:
        return [self.annotated, self.heard_as, self.table, self.json_file]

    @staticmethod
    def show(result: ImageResult) -> tuple[Any, ...]:
        """The values of :attr:`outputs` for one result."""
        heard = "\n".join(f"- {line}" for line in result.heard_as)
        return result.annotated, heard, result.rows, result.json_path


@dataclass(frozen=True)
class VideoTab:
    """The video tab's input, options, button and result components."""

    video: Any
    soundtrack: Any
    fps: Any
    button: Any
    annotated: Any
    tracks: Any

    @property
    def outputs(self) -> list[Any]:
        return [self.annotated, self.tracks]

    @staticmethod
    def show(result: VideoResult) -> tuple[Any, ...]:
        """The values of :attr:`outputs` for one result."""
        return result.video_path, result.tracks


def build_demo(model: AudiodeticModel | DemoBackend, *, models: Mapping[str, ModelSource] | None = None,
               concurrency_limit: int = 2, max_queue: int = 32, examples: bool = True) -> gr.Blocks:
    """The page for ``model`` (plus ``models``, offered in a drop-down), or for a ready :class:`DemoBackend`.

    Args:
        concurrency_limit: detection requests run at once (all tabs and events together).
        max_queue: requests that may wait; beyond that a request is answered "queue is full".
        examples: show the synthetic example picture and sounds.

    Returns:
        A queued ``gr.Blocks``; launch it with ``max_file_size=backend.limits.max_bytes`` so Gradio stops larger
        uploads in the browser (:func:`audiodetic.demo.launch.start` does).
    """
    if isinstance(model, DemoBackend):
        if models:
            raise InputError("give the extra models to the DemoBackend, not to build_demo")
        backend = model
    else:
        backend = DemoBackend({model.name: model, **{k: v for k, v in (models or {}).items() if k != model.name}})

    def forget(request: gr.Request) -> None:
        backend.forget(request.session_hash)

    with gr.Blocks(title="audiodetic: find what makes a sound", delete_cache=(3600, FILES_MAX_AGE_S)) as demo:
        gr.Markdown("# audiodetic\nFind and segment the things in a picture that make a given sound. "
                    "Add one or more sounds (or record one) and a picture, then press **Detect**. "
                    f"{_limits_text(backend.limits)}")
        with gr.Row():
            with gr.Column(scale=1, min_width=320):
                prompts = prompt_controls(backend)
            with gr.Column(scale=2), gr.Tabs():
                pictures = image_tab(backend, prompts)
                video_tab(backend, prompts)
        if examples:
            _examples(pictures, prompts)
        demo.unload(forget)
    demo.queue(default_concurrency_limit=concurrency_limit, max_size=max_queue)
    return demo


def _limits_text(limits: UploadLimits) -> str:
    return (f"Uploads: files up to {format_size(limits.max_bytes)}, pictures up to "
            f"{limits.max_image_pixels / 1e6:g} megapixels, sounds up to {limits.max_audio_seconds:g} s.")


def prompt_controls(backend: DemoBackend) -> PromptControls:
    """The sounds, their names, a recording, texts, threshold and model; the names table follows the uploads."""
    sounds = gr.File(label="Sounds (one or more audio files)", file_count="multiple", file_types=["audio"],
                     type="filepath", elem_id="sound-files")
    names = gr.Dataframe(headers=NAME_HEADERS, datatype=["str", "str"], type="array",
                         label="Sound names (edit the name; files with the same name are averaged)",
                         interactive=True, static_columns=[0], elem_id="sound-names")
    recording = gr.Audio(label="Record a sound", sources=["microphone", "upload"], type="filepath",
                         elem_id="recording")
    recording_name = gr.Textbox(value="recording", label="Name of the recorded sound")
    texts = gr.Textbox(label="Text prompts (optional, comma-separated)", placeholder="a car, a bird",
                       elem_id="texts")
    threshold = gr.Slider(0.0, 1.0, value=0.5, step=0.01, label="Score threshold", elem_id="threshold")
    model_name = gr.Dropdown(backend.model_names, value=backend.model_names[0], label="Model",
                             interactive=len(backend.model_names) > 1)
    sounds.change(name_rows, [sounds, names], names, queue=False)
    return PromptControls(sounds, names, recording, recording_name, texts, threshold, model_name)


def image_tab(backend: DemoBackend, prompts: PromptControls) -> ImageTab:
    """The "Image" tab: a picture in, the drawn detections, their table and JSON out; Detect runs the backend,
    releasing the threshold or submitting texts re-scores once there is something to score."""
    with gr.Tab("Image", id="image"):
        with gr.Row():
            image = gr.Image(label="Image", type="filepath", sources=["upload", "clipboard", "webcam"],
                             elem_id="input-image")
            annotated = gr.Image(label="Detections", type="pil", format="png", interactive=False,
                                 elem_id="annotated")
        button = gr.Button("Detect", variant="primary", elem_id="detect-button")
        heard_as = gr.Markdown(label="What each sound was heard as", elem_id="heard-as")
        table = gr.Dataframe(headers=TABLE_HEADERS, datatype=["str", "number", "number", "number", "number",
                                                               "number"],
                             type="array", label="Detections (box in image pixels)", interactive=False,
                             elem_id="results-table")
        json_file = gr.File(label="Detections as JSON", interactive=False, elem_id="json-file")
    tab = ImageTab(image, button, annotated, heard_as, table, json_file)

    def detect(image, sound_files, names, recording, recording_name, texts, threshold, model_name,
               request: gr.Request):
        result = _answer(backend.run, [image, recording, *(sound_files or [])], image, sound_files, names,
                         recording, recording_name, texts, threshold, model_name, request.session_hash)
        if not len(result.detections):
            gr.Warning(f"Nothing scored above {threshold:.2f}; try a lower threshold.")
        return tab.show(result)

    def rescore(image, sound_files, names, recording, recording_name, texts, threshold, model_name,
                request: gr.Request):
        if image is None or not (sound_files or recording or (texts or "").strip()):
            return tuple(gr.skip() for _ in tab.outputs)
        return detect(image, sound_files, names, recording, recording_name, texts, threshold, model_name, request)

    inputs = [image, *prompts.inputs]
    events = {"concurrency_id": "detect", "preprocess": False}  # see _answer: the backend reads every upload
    button.click(detect, inputs, tab.outputs, api_name="detect", **events)
    prompts.threshold.release(rescore, inputs, tab.outputs, api_name="rescore_threshold", **events)
    prompts.texts.submit(rescore, inputs, tab.outputs, api_name="rescore_texts", **events)
    return tab


def video_tab(backend: DemoBackend, prompts: PromptControls) -> VideoTab:
    """The "Video" tab: a video in (its own soundtrack as a prompt, with the sounds and texts given), the annotated
    video (with its audio) and the track table out."""
    from audiodetic.video.backend import TRACK_COLUMNS

    with gr.Tab("Video", id="video"):
        with gr.Row():
            video = gr.Video(label="Video", sources=["upload"], elem_id="input-video")
            annotated = gr.Video(label="What is sounding", interactive=False, elem_id="annotated-video")
        with gr.Row():
            soundtrack = gr.Checkbox(value=True, label="Use the video's own soundtrack as a prompt",
                                     elem_id="soundtrack")
            fps = gr.Slider(0.5, 10.0, value=2.0, step=0.5, label="Frames analysed per second", elem_id="video-fps")
        button = gr.Button("Find what is sounding", variant="primary", elem_id="video-button")
        tracks = gr.Dataframe(headers=list(TRACK_COLUMNS), type="array", interactive=False,
                              label=f"Tracks (the first {backend.limits.max_video_seconds:g} s of the video)",
                              elem_id="tracks-table")
    tab = VideoTab(video, soundtrack, fps, button, annotated, tracks)

    def detect(video, soundtrack, fps, sound_files, names, recording, recording_name, texts, threshold, model_name,
               request: gr.Request):
        result = _answer(backend.run_video, [video, recording, *(sound_files or [])], video, sound_files, names,
                         recording, recording_name, texts, threshold, model_name, request.session_hash,
                         soundtrack=bool(soundtrack), fps=float(fps))
        if not result.tracks:
            gr.Warning(f"Nothing scored above {threshold:.2f} long enough to make a track; try a lower threshold.")
        return tab.show(result)

    button.click(detect, [video, soundtrack, fps, *prompts.inputs], tab.outputs, api_name="detect_video",
                 concurrency_id="detect", preprocess=False)
    return tab


def _answer(action: Callable[..., Any], uploads: list[Any], *args: Any, **options: Any) -> Any:
    """``action(*args)``, with every error turned into a message in the page naming uploads by their file names
    (a user's mistake is not logged as a server traceback).

    Detection events run without Gradio's preprocessing (``preprocess=False``): their handlers get the uploads as
    Gradio's file records (checked to lie in Gradio's upload cache, but not opened), so a picture that is not a
    picture reaches the backend's checks instead of failing inside ``gr.Image`` with Gradio's message.
    """
    try:
        return action(*args, **options)
    except (AudiodeticError, ValueError, FileNotFoundError, OSError) as error:
        raise gr.Error(short_paths(str(error), uploads), print_exception=False) from None
    except Exception as error:  # keep serving; show what happened (the log has the traceback)
        LOG.exception("demo request failed")
        raise gr.Error(f"Internal error ({type(error).__name__}): {short_paths(str(error), uploads)}",
                       print_exception=False) from None


def _examples(pictures: ImageTab, prompts: PromptControls) -> None:
    folder = example_dir()
    gr.Examples(
        examples=[[str(folder / "scene.png"), [str(folder / "siren.wav"), str(folder / "engine.wav")], "", 0.3],
                  [str(folder / "scene.png"), [str(folder / "birdsong.wav")], "a bird", 0.3]],
        inputs=[pictures.image, prompts.sounds, prompts.texts, prompts.threshold],
        label="Examples (synthetic picture and sounds)",
    )
