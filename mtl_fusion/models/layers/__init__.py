"""Building blocks shared by several heads."""
from .bidirectional_window_block import BidirectionalWindowBlock
from .coord_encoding import CoordEncoding
from .geometry_compensation import GeometryCompensationModule
from .query_decoder_layer import build_query_decoder_layer
from .task_adaptive_attention import TaskAdaptiveAttentionGenerator
from .window_cross_attention import BEVWindowCrossAttention

__all__ = [
    'BidirectionalWindowBlock', 'BEVWindowCrossAttention', 'CoordEncoding',
    'build_query_decoder_layer',
    'TaskAdaptiveAttentionGenerator',
    'GeometryCompensationModule'
]
