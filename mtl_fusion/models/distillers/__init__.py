"""Distillers: map recorded student / teacher pairs to losses."""
from .configurable_distiller import LOSS_PREFIX, ConfigurableDistiller

__all__ = ['ConfigurableDistiller', 'LOSS_PREFIX']
