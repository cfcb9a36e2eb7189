"""The Gradio demo: upload a picture, upload or record sounds, see where the things that make them are.

* :mod:`.backend` - what the buttons do, without Gradio (models, prompts from uploads, tables, JSON);
* :mod:`.uploads` - what the page hands the backend, and the limits every upload passes before work starts;
* :mod:`.sessions` - per-session encoded pictures, bounded;
* :mod:`.page` - the Gradio page (:func:`~audiodetic.demo.page.build_demo`), one function per tab;
* :mod:`.launch` - command-line options and serving (``audiodetic demo``, ``python -m audiodetic.demo``);
* :mod:`.media` - the synthetic example media, shipped as package data in ``examples/``.

Importing this package imports neither Gradio nor torch.
"""
