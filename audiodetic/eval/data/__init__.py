"""Sound-class -> COCO/LVIS category tables (CSV data; see ``audiodetic.eval.mappings``)."""
