"""COCO and LVIS evaluation (pycocotools / lvis-api), resumable sharded runs, reports and the sound-prompt benchmark.

Submodules import their heavy dependencies (torch, matplotlib, lvis-api) on demand.
"""

from audiodetic.eval.datasets import EvalDataset
from audiodetic.eval.scoring import IouTypeScores, score_results

__all__ = ["EvalDataset", "IouTypeScores", "score_results"]
