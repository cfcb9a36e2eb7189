"""The Gradio page of the demo: upload a picture and some sounds, see where the things that make those sounds are.

:func:`build_demo` returns a queued ``gr.Blocks`` whose handlers call :class:`~audiodetic.demo.backend.DemoBackend`.
Errors become messages in the page; the server keeps serving.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

from audiodetic.demo.backend import NAME_HEADERS, TABLE_HEADERS, DemoBackend, ModelSource, name_rows, short_paths
from audiodetic.demo.media import example_dir
from audiodetic.errors import AudiodeticError
from audiodetic.model import AudiodeticModel

LOG = logging.getLogger("audiodetic.demo")


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
            raise gr.Error(short_paths(str(error), [*(sound_files or []), recording])) from None
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
