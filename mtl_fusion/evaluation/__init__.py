"""Evaluation: BEV map IoU and the multi-task (det + map) metric."""
from .metrics import *  # noqa: F401,F403
from .metrics import __all__  # noqa: F401
