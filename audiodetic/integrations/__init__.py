"""Optional bridges from audiodetic into other detection stacks.

Each submodule imports its host framework lazily (only when called), so ``import audiodetic`` and
``import audiodetic.integrations`` never import detectron2 or any other optional dependency.

* :mod:`audiodetic.integrations.detectron2` - give an existing upstream Detic (detectron2) model an audiodetic
  :class:`~audiodetic.vocabulary.Vocabulary` (sounds, text, images, ``.npy``) as its classifier.
"""
