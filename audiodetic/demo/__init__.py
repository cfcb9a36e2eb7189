"""The Gradio demo: upload a picture, upload or record sounds, see where the things that make them are.

* :mod:`.backend` - what the buttons do, without Gradio (sessions, prompts from uploads, tables, JSON);
* :mod:`.page` - the Gradio page (:func:`~audiodetic.demo.page.build_demo`);
* :mod:`.launch` - command-line options and serving (``audiodetic demo``, ``python -m audiodetic.demo``);
* :mod:`.media` - the synthetic example media, shipped as package data in ``examples/``.

Importing this package imports neither Gradio nor torch.
"""
