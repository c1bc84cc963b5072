"""Image backbones."""
from .two_pathway_net import TwoPathwayNet

__all__ = ['TwoPathwayNet']
