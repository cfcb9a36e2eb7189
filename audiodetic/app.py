"""The Gradio demo: upload a picture and some sounds, see where the things that make those sounds are.

``build_demo(model) -> gr.Blocks``; ``main(argv)`` parses ``--detector/--audio-weights/--host/--port`` and launches
(``demo/app.py`` and ``audiodetic demo`` both call it). Each browser session keeps a
:class:`~audiodetic.api.PromptPredictor` in its state: the picture is encoded once and changing only the sounds,
texts or threshold re-scores the stored encoding. Errors become messages in the page; the server keeps serving.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from audiodetic.api import AudiodeticModel, PromptPredictor
from audiodetic.demo_media import EXAMPLE_FILES, write_example_media
from audiodetic.errors import AudiodeticError
from audiodetic.structures import Detections
from audiodetic.viz import draw

LOG = logging.getLogger("audiodetic.app")
TABLE_HEADERS = ["label", "score", "x1", "y1", "x2", "y2"]
NAME_HEADERS = ["file", "name"]
SHIPPED_EXAMPLES = Path(__file__).resolve().parents[1] / "demo" / "examples"
ModelSource = AudiodeticModel | Callable[[], AudiodeticModel]


class DemoBackend:
    """What the page's buttons do, without Gradio (so it can be tested directly).

    Args:
        models: ``{display name: model or zero-argument loader}``; loaders run on first selection, once.
    """

    def __init__(self, models: Mapping[str, ModelSource]) -> None:
        if not models:
            raise ValueError("the demo needs at least one model")
        self._sources = dict(models)
        self._loaded: dict[str, AudiodeticModel] = {}
        self._lock = threading.Lock()

    @property
    def model_names(self) -> list[str]:
        return list(self._sources)

    def model(self, name: str | None) -> AudiodeticModel:
        """The model called ``name`` (the first one when ``None``), loading it on first use."""
        name = name or self.model_names[0]
        if name not in self._sources:
            raise ValueError(f"unknown model {name!r}; available: {self.model_names}")
        with self._lock:
            if name not in self._loaded:
                source = self._sources[name]
                self._loaded[name] = source if isinstance(source, AudiodeticModel) else source()
            return self._loaded[name]

    def predictor(self, session: dict[str, Any] | None, image: np.ndarray, model_name: str | None
                  ) -> tuple[PromptPredictor, dict[str, Any]]:
        """The session's predictor for ``image``; encodes only when the image or the model changed."""
        digest = hashlib.blake2b(np.ascontiguousarray(image).tobytes(), digest_size=16)
        digest.update(str(image.shape).encode())
        key = (model_name or self.model_names[0], digest.hexdigest())
        if session and session.get("key") == key:
            return session["predictor"], session
        predictor = self.model(model_name).predictor()
        predictor.set_image(image)
        return predictor, {"key": key, "predictor": predictor}

    def run(self, image: np.ndarray | None, sound_files: Sequence[Any] | None, names: Any, recording: str | None,
            recording_name: str | None, texts: str | None, threshold: float, model_name: str | None,
            session: dict[str, Any] | None) -> tuple[Any, list[list[Any]], str, dict[str, Any], Detections]:
        """Detect and return ``(annotated PIL image, table rows, JSON file path, new session, detections)``.

        Raises ``ValueError`` (and subclasses) with a message meant for the page.
        """
        if image is None:
            raise ValueError("Add an image first (upload, paste or take a webcam picture).")
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in (3, 4):
            raise ValueError(f"The image must be an RGB picture; got an array of shape {image.shape}.")
        image = np.ascontiguousarray(image[..., :3])
        sounds = collect_sounds(sound_files, names, recording, recording_name)
        text_prompts = [t.strip() for t in (texts or "").split(",") if t.strip()]
        if not sounds and not text_prompts:
            raise ValueError("Add at least one sound (upload or record one) or a text prompt.")
        predictor, session = self.predictor(session, image, model_name)
        detections = predictor.predict(sounds or None, text=text_prompts or None, score_threshold=threshold)
        return (draw(image, detections), table_rows(detections), write_json(detections), session, detections)


def collect_sounds(sound_files: Sequence[Any] | None, names: Any, recording: str | None,
                   recording_name: str | None) -> dict[str, list[str]]:
    """``{name: [paths]}`` from uploaded files (named by the names table, else by file stem) and a recording.

    Files given the same name are averaged into one prompt.
    """
    by_file = {}
    for row in _rows(names):
        if len(row) >= 2 and str(row[0]).strip() and str(row[1]).strip():
            by_file[str(row[0]).strip()] = str(row[1]).strip()
    sounds: dict[str, list[str]] = {}
    for item in sound_files or []:
        path = _upload_path(item)
        name = by_file.get(path.name, path.stem)
        sounds.setdefault(name, []).append(str(path))
    if recording:
        sounds.setdefault((recording_name or "").strip() or "recording", []).append(str(recording))
    return sounds


def name_rows(sound_files: Sequence[Any] | None, names: Any = None) -> list[list[str]]:
    """Rows ``[file, name]`` for the uploaded files, keeping names the user already edited."""
    kept = {str(row[0]): str(row[1]) for row in _rows(names) if len(row) >= 2}
    rows = []
    for item in sound_files or []:
        path = _upload_path(item)
        rows.append([path.name, kept.get(path.name, path.stem)])
    return rows


def _upload_path(item: Any) -> Path:
    """The server-side path of one Gradio upload (a path string, or a file object with ``.name``)."""
    return Path(item if isinstance(item, (str, Path)) else getattr(item, "name", str(item)))


def _rows(table: Any) -> list[list[Any]]:
    if table is None:
        return []
    if hasattr(table, "values") and hasattr(table, "columns"):  # pandas DataFrame
        return [list(row) for row in table.values.tolist()]
    if isinstance(table, dict):
        return [list(row) for row in table.get("data", [])]
    return [list(row) for row in table]


def _short_paths(message: str, paths: Sequence[Any]) -> str:
    """``message`` with the server's temporary upload paths replaced by the uploaded file names."""
    for path in paths:
        if path:
            message = message.replace(str(path), Path(str(path)).name)
    return message


def table_rows(detections: Detections) -> list[list[Any]]:
    """``[label, score, x1, y1, x2, y2]`` per detection, best first (box in image pixels, 1 decimal)."""
    ordered = detections.sorted_by_score()
    return [[label, round(float(score), 3), *(round(float(v), 1) for v in box)]
            for label, score, box in zip(ordered.labels, ordered.scores, ordered.boxes)]


def write_json(detections: Detections, image_name: str = "image") -> str:
    """Write the CLI's JSON (a list with one object per image) to a new temporary file; returns its path."""
    directory = Path(tempfile.mkdtemp(prefix="audiodetic-demo-"))
    path = directory / "detections.json"
    path.write_text(json.dumps([detections.to_json_dict(image=image_name)], indent=1))
    return str(path)


def example_dir() -> Path:
    """The shipped example media, or a generated copy when the package runs without the repository."""
    if all((SHIPPED_EXAMPLES / name).is_file() for name in EXAMPLE_FILES):
        return SHIPPED_EXAMPLES
    directory = Path(tempfile.gettempdir()) / "audiodetic-demo-examples"
    if not all((directory / name).is_file() for name in EXAMPLE_FILES):
        write_example_media(directory)
    return directory


def build_demo(model: AudiodeticModel, *, models: Mapping[str, ModelSource] | None = None,
               concurrency_limit: int = 2, max_queue: int = 32, examples: bool = True) -> Any:
    """The Gradio page for ``model`` (plus ``models``, offered in a drop-down). Returns a queued ``gr.Blocks``."""
    import gradio as gr

    backend = DemoBackend({model.name: model, **{k: v for k, v in (models or {}).items() if k != model.name}})

    def run(image, sound_files, names, recording, recording_name, texts, threshold, model_name, session):
        try:
            annotated, rows, json_path, session, detections = backend.run(
                image, sound_files, names, recording, recording_name, texts, threshold, model_name, session)
        except (AudiodeticError, ValueError, FileNotFoundError, OSError) as error:
            raise gr.Error(_short_paths(str(error), [*(sound_files or []), recording])) from None
        except Exception as error:  # keep serving; show what happened
            LOG.exception("demo request failed")
            raise gr.Error(f"Internal error ({type(error).__name__}): {error}") from None
        if not len(detections):
            gr.Warning(f"Nothing scored above {threshold:.2f}; try a lower threshold.")
        return annotated, rows, json_path, session

    def rescore(image, sound_files, names, recording, recording_name, texts, threshold, model_name, session):
        """Threshold/text changes re-run only once there is something to score."""
        if image is None or not (sound_files or recording or (texts or "").strip()):
            return gr.skip(), gr.skip(), gr.skip(), session
        return run(image, sound_files, names, recording, recording_name, texts, threshold, model_name, session)

    with gr.Blocks(title="audiodetic: find what makes a sound") as demo:
        gr.Markdown("# audiodetic\nFind and segment the things in a picture that make a given sound. "
                    "Upload a picture and one or more sounds (or record one), then press **Detect**.")
        session = gr.State(None)
        with gr.Row():
            with gr.Column():
                image = gr.Image(label="Image", type="numpy", sources=["upload", "clipboard", "webcam"],
                                 elem_id="input-image")
                sounds = gr.File(label="Sounds (one or more audio files)", file_count="multiple",
                                 file_types=["audio"], type="filepath", elem_id="sound-files")
                names = gr.Dataframe(headers=NAME_HEADERS, datatype=["str", "str"], type="array",
                                     label="Sound names (edit the name; files with the same name are averaged)",
                                     interactive=True, static_columns=[0], elem_id="sound-names")
                with gr.Row():
                    recording = gr.Audio(label="Record a sound", sources=["microphone", "upload"],
                                         type="filepath", elem_id="recording")
                    recording_name = gr.Textbox(value="recording", label="Name of the recorded sound")
                texts = gr.Textbox(label="Text prompts (optional, comma-separated)", placeholder="a car, a bird",
                                   elem_id="texts")
                threshold = gr.Slider(0.0, 1.0, value=0.5, step=0.01, label="Score threshold",
                                      elem_id="threshold")
                model_name = gr.Dropdown(backend.model_names, value=backend.model_names[0], label="Model",
                                         interactive=len(backend.model_names) > 1)
                button = gr.Button("Detect", variant="primary", elem_id="detect-button")
            with gr.Column():
                annotated = gr.Image(label="Detections", type="pil", interactive=False, elem_id="annotated")
                table = gr.Dataframe(headers=TABLE_HEADERS, datatype=["str", "number", "number", "number",
                                                                      "number", "number"],
                                     type="array", label="Detections (box in image pixels)", interactive=False,
                                     elem_id="results-table")
                json_file = gr.File(label="Detections as JSON", interactive=False, elem_id="json-file")
        inputs = [image, sounds, names, recording, recording_name, texts, threshold, model_name, session]
        outputs = [annotated, table, json_file, session]
        sounds.change(name_rows, [sounds, names], names, queue=False)
        button.click(run, inputs, outputs, concurrency_id="detect")
        threshold.release(rescore, inputs, outputs, concurrency_id="detect")
        texts.submit(rescore, inputs, outputs, concurrency_id="detect")
        if examples:
            folder = example_dir()
            gr.Examples(
                examples=[[str(folder / "scene.png"), [str(folder / "siren.wav"), str(folder / "engine.wav")],
                           "", 0.3],
                          [str(folder / "scene.png"), [str(folder / "birdsong.wav")], "a bird", 0.3]],
                inputs=[image, sounds, texts, threshold],
                label="Examples (synthetic picture and sounds)",
            )
    demo.queue(default_concurrency_limit=concurrency_limit, max_size=max_queue)
    return demo


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    from audiodetic.cli.demo import add_arguments

    parser = argparse.ArgumentParser(prog="audiodetic demo", description="Launch the audiodetic Gradio demo.")
    add_arguments(parser)
    return parser.parse_args(argv)


def launch(args: argparse.Namespace) -> int:
    """Load the models named in ``args``, build the page and serve it until interrupted."""
    from audiodetic import api

    kwargs: dict[str, Any] = {"device": args.device, "audio_weights": args.audio_weights, "bridge": args.bridge}
    if args.text_weights:
        kwargs["text_weights"] = args.text_weights
    model = api.load(args.detector, **kwargs)
    others: dict[str, ModelSource] = {}
    for name in api.list_models("detector", local_only=True):
        if name != model.name:
            others[name] = lambda name=name: api.load(name, **kwargs)
    build_demo(model, models=others, concurrency_limit=args.concurrency).launch(
        server_name=args.host, server_port=args.port, show_error=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python demo/app.py``."""
    return launch(parse_args(argv))
