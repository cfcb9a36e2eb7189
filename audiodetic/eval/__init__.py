"""COCO and LVIS evaluation (pycocotools / lvis-api), resumable sharded runs, reports and the sound-prompt benchmark.

Main entry points: :func:`evaluate` (run a detector, merge, score, report), :func:`score_results` (score COCO
results records), :func:`run_sound_benchmark` (sounds vs. text as class prompts). The ``audiodetic eval`` command
wraps them. Heavy dependencies (torch, matplotlib, lvis-api) are imported on use.
"""

from audiodetic.eval.datasets import EvalDataset
from audiodetic.eval.mappings import load_mapping, read_clip_index
from audiodetic.eval.pipeline import RunSettings, evaluate, merge_and_score, run_sound_benchmark
from audiodetic.eval.runner import Variant
from audiodetic.eval.scoring import IouTypeScores, score_results
from audiodetic.eval.sound_benchmark import plan_benchmark

__all__ = [
    "EvalDataset", "IouTypeScores", "RunSettings", "Variant", "evaluate", "load_mapping", "merge_and_score",
    "plan_benchmark", "read_clip_index", "run_sound_benchmark", "score_results",
]
