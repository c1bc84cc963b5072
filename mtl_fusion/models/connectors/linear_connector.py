"""A linear map on the last dimension."""
from mmdet3d.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor, nn

__all__ = ['LinearConnector']


@MODELS.register_module()
class LinearConnector(BaseModule):
    """``Linear`` adapter over the last dimension (tokens, logits, codes).

    Args:
        in_features (int): Student features.
        out_features (int): Teacher features.
        bias (bool): Whether the layer has a bias. Defaults to True.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    def __init__(self,
                 in_features: int,
                 out_features: int,
                 bias: bool = True,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.linear = nn.Linear(in_features, out_features, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        """(..., in) -> (..., out)."""
        return self.linear(x)
