"""Prompt arguments as users hand them in, put in one standard form: ``{name: [sources]}`` for sounds and
``{name: phrase}`` for texts, insertion-ordered, names unique and non-empty. Errors name the argument and the
prompt.

Parsing checks the *form* of each source (:func:`~audiodetic.inputs.sounds.is_sound_source`) and keeps the
sources as given; their contents (files exist, rates are whole numbers of Hz) are checked when the prompt is built
(:class:`audiodetic.prompts.Sound`, through :func:`~audiodetic.inputs.sounds.check_sound_source`), with the
prompt's name in the message."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from audiodetic.errors import InputError, InputTypeError, MissingFileError
from audiodetic.inputs.sounds import SOURCE_FORMS, is_sound_source

AUDIO_FORMS = f"{SOURCE_FORMS}, a list of those, or a {{name: source or [sources]}} dict"


def check_name(name: Any, argument: str) -> str:
    """A prompt name: a non-empty string, stripped."""
    if not isinstance(name, str) or not name.strip():
        raise InputError(f"{argument}: prompt names must be non-empty strings, got {name!r}")
    return name.strip()


def _source_name(source: Any, index: int) -> str:
    if isinstance(source, (str, os.PathLike)):
        stem = Path(source).stem
        if stem:
            return stem
    return f"sound_{index + 1}"


def parse_audio_prompts(audio_prompts: Any, *, argument: str = "audio_prompts") -> dict[str, list[Any]]:
    """``{name: [sources]}`` (insertion-ordered) from any accepted form of sound prompts.

    Forms: one source (path -> its file stem as the name; other sources -> ``"sound_1"``); a list of sources (one
    prompt per source, named by stem or ``"sound_<i>"``); a ``{name: source or [sources]}`` dict (several sources
    under one name are averaged into one prompt). ``None`` gives ``{}``.
    """
    if audio_prompts is None:
        return {}
    if is_sound_source(audio_prompts):
        return {_source_name(audio_prompts, 0): [audio_prompts]}
    if isinstance(audio_prompts, Mapping):
        prompts: dict[str, list[Any]] = {}
        for name, sources in audio_prompts.items():
            name = check_name(name, argument)
            if is_sound_source(sources):
                sources = [sources]
            elif not isinstance(sources, (list, tuple)) or not sources:
                raise InputError(f"{argument}[{name!r}]: expected one audio source or a non-empty list of them "
                                 f"({SOURCE_FORMS}), got {type(sources).__name__}")
            for source in sources:
                if not is_sound_source(source):
                    raise InputError(f"{argument}[{name!r}]: {type(source).__name__} is not an audio source; use "
                                     f"{SOURCE_FORMS}")
            if name in prompts:
                raise InputError(f"{argument}: prompt name {name!r} appears twice")
            prompts[name] = list(sources)
        if not prompts:
            raise InputError(f"{argument}: the dict is empty; give at least one {{name: source}} entry")
        return prompts
    if isinstance(audio_prompts, (list, tuple)):
        if not audio_prompts:
            raise InputError(f"{argument}: the list is empty; give at least one sound")
        prompts = {}
        for index, source in enumerate(audio_prompts):
            if not is_sound_source(source):
                raise InputError(f"{argument}[{index}]: {type(source).__name__} is not an audio source; "
                                 f"expected {AUDIO_FORMS}")
            name = _source_name(source, index)
            if name in prompts:
                raise InputError(
                    f"{argument}: two files have the stem {name!r}; name them with a dict, e.g. "
                    f"{{'{name}': [file1, file2]}} to average them or {{'a': file1, 'b': file2}}"
                )
            prompts[name] = [source]
        return prompts
    raise InputTypeError(f"{argument}: expected {AUDIO_FORMS}; got {type(audio_prompts).__name__}")


def parse_text_prompts(text_prompts: Any, *, argument: str = "text_prompts") -> dict[str, str]:
    """``{name: phrase}`` from a phrase, a list of phrases (each its own name) or a ``{name: phrase}`` dict."""
    if text_prompts is None:
        return {}
    if isinstance(text_prompts, str):
        text_prompts = [text_prompts]
    if isinstance(text_prompts, Mapping):
        items = [(check_name(k, argument), v) for k, v in text_prompts.items()]
    elif isinstance(text_prompts, (list, tuple)):
        items = [(check_name(v, argument), v) for v in text_prompts]
    else:
        raise InputTypeError(f"{argument}: expected a phrase, a list of phrases or a {{name: phrase}} dict; "
                             f"got {type(text_prompts).__name__}")
    prompts: dict[str, str] = {}
    for name, phrase in items:
        if not isinstance(phrase, str) or not phrase.strip():
            raise InputError(f"{argument}[{name!r}]: the phrase must be a non-empty string, got {phrase!r}")
        if name in prompts:
            raise InputError(f"{argument}: prompt name {name!r} appears twice")
        prompts[name] = phrase.strip()
    if not prompts:
        raise InputError(f"{argument}: empty; give at least one phrase")
    return prompts


# ------------------------------------------------------------------------------ the same, as command-line options
def parse_names_option(text: str | None, *, flag: str = "--names") -> list[str] | None:
    """``"a,b,c"`` -> ``["a", "b", "c"]`` (a command-line list of row names); empty entries are refused."""
    if text is None:
        return None
    names = [name.strip() for name in text.split(",")]
    if not names or any(not name for name in names):
        raise InputError(f"{flag} must be comma-separated non-empty names, got {text!r}")
    return names


def parse_audio_options(items: Sequence[str], *, flag: str = "--audio") -> dict[str, list[str]]:
    """Command-line sound prompts: ``["dog=a.wav", "dog=b.wav", "siren.ogg"]`` -> ``{"dog": ["a.wav", "b.wav"],
    "siren": ["siren.ogg"]}`` (a repeated name averages its clips; a bare FILE is named by its stem).

    Every file must exist (``MissingFileError`` names it); names must be non-empty.
    """
    prompts: dict[str, list[str]] = {}
    for item in items:
        name, sep, file = item.partition("=")
        if not sep:
            name, file = Path(item).stem, item
        name = name.strip()
        if not name or not file:
            raise InputError(f"{flag} takes NAME=FILE (or FILE), got {item!r}")
        if not Path(file).is_file():
            raise MissingFileError(f"{flag} {item}: sound file not found: {file}")
        prompts.setdefault(name, []).append(file)
    return prompts


def parse_text_options(items: Sequence[str], *, flag: str = "--text") -> dict[str, str]:
    """Command-line text prompts: ``["car", "pet=a small dog"]`` -> ``{"car": "car", "pet": "a small dog"}``."""
    prompts: dict[str, str] = {}
    for item in items:
        name, sep, phrase = item.partition("=")
        name, phrase = name.strip(), (phrase if sep else name).strip()
        if not name or not phrase:
            raise InputError(f"{flag} takes NAME or NAME=PHRASE (non-empty), got {item!r}")
        if name in prompts:
            raise InputError(f"{flag}: the name {name!r} is given twice")
        prompts[name] = phrase
    return prompts
