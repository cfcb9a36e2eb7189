"""The one owner of what users hand in: pictures (:mod:`.images`), sounds (:mod:`.sounds`), files and their size
limit (:mod:`.files`), prompt arguments (:mod:`.prompts`) and options (:mod:`.options`). Every surface - API, CLI,
demo, evaluation - checks user input through these functions, so a rule and its message exist once.

Pictures become ``(H, W, 3)`` uint8 RGB arrays (or RGB ``PIL.Image`` objects), upright; sound prompts become an
ordered ``{name: [checked sources]}`` mapping; text prompts ``{name: phrase}``.
"""

from __future__ import annotations

from audiodetic.inputs.files import MEGABYTE, check_file_size, format_size
from audiodetic.inputs.images import (
    DEFAULT_MAX_IMAGE_PIXELS,
    ENV_MAX_IMAGE_PIXELS,
    IMAGE_FORMS,
    as_picture,
    as_pil_rgb,
    as_rgb_array,
    check_image_file,
    check_image_pixels,
    check_image_prompt,
    is_image_batch,
    max_image_pixels,
    sequence_of_images,
)
from audiodetic.inputs.options import (
    check_device,
    check_input_size,
    check_positive_int,
    check_threshold,
    parse_input_size,
)
from audiodetic.inputs.prompts import (
    AUDIO_FORMS,
    check_name,
    parse_audio_options,
    parse_audio_prompts,
    parse_names_option,
    parse_text_options,
    parse_text_prompts,
)
from audiodetic.inputs.sounds import (
    SOURCE_FORMS,
    check_sound_file,
    check_sound_source,
    is_sound_source,
    is_waveform_pair,
)

__all__ = [
    "AUDIO_FORMS", "DEFAULT_MAX_IMAGE_PIXELS", "ENV_MAX_IMAGE_PIXELS", "IMAGE_FORMS", "MEGABYTE", "SOURCE_FORMS",
    "as_picture", "as_pil_rgb", "as_rgb_array", "check_device", "check_file_size", "check_image_file",
    "check_image_pixels", "check_image_prompt", "check_input_size", "check_name", "check_positive_int",
    "check_sound_file", "check_sound_source", "check_threshold", "format_size", "is_image_batch", "is_sound_source",
    "is_waveform_pair", "max_image_pixels", "parse_audio_options", "parse_audio_prompts", "parse_input_size",
    "parse_names_option", "parse_text_options", "parse_text_prompts", "sequence_of_images",
]
