"""The baseline stack: what a shop serves from its first minute, before anything is trained."""

from shoprank.baseline.build import PREFIX, is_baseline, publish_recommend, publish_search, trained_version
from shoprank.baseline.worker import BaselineWorker, embed_and_publish, read_progress

__all__ = ["PREFIX", "BaselineWorker", "embed_and_publish", "is_baseline", "publish_recommend", "publish_search",
           "read_progress", "trained_version"]
