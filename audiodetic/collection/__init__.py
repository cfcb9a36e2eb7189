"""Detection over large collections of images: streamed, resumable, batched, on one machine or many.

:func:`detect_collection` is what ``audiodetic detect`` runs: it lists the images (:mod:`.sources`), opens or
resumes the JSON-lines results file (:mod:`.results`), and runs one of the engines — the local pipeline with
images prepared ahead by threads (:mod:`.pipeline`), ``torchrun`` ranks (:mod:`.distributed`) or Ray Data actors
(:mod:`audiodetic.integrations.ray`) — each of which builds one :class:`~.session.DetectionSession` (model and
vocabulary) per process. :class:`DetectionSettings` holds what decides the detections.
"""

from audiodetic.collection.progress import RunSummary
from audiodetic.collection.run import RunOptions, detect_collection
from audiodetic.collection.settings import DetectionSettings
from audiodetic.collection.sources import ImageItem, list_images

__all__ = ["DetectionSettings", "ImageItem", "RunOptions", "RunSummary", "detect_collection", "list_images"]
