"""Image backbones."""
from .mmseg_backbone_adapter import MMSegBackboneAdapter
from .two_pathway_net import TwoPathwayNet

__all__ = ['TwoPathwayNet', 'MMSegBackboneAdapter']
