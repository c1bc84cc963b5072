"""Building blocks shared by several heads."""
from .coord_encoding import CoordEncoding
from .query_decoder_layer import build_query_decoder_layer

__all__ = ['CoordEncoding', 'build_query_decoder_layer']
