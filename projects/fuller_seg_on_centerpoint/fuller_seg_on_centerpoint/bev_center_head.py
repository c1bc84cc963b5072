"""mmdet3d's CenterHead fed with one fused BEV tensor."""
from typing import List, Sequence, Tuple, Union

from mmdet3d.models.dense_heads import CenterHead
from mmdet3d.registry import MODELS
from torch import Tensor

__all__ = ['BEVCenterHead']


@MODELS.register_module()
class BEVCenterHead(CenterHead):
    """:class:`mmdet3d.models.dense_heads.CenterHead` that accepts a tensor.

    ``CenterHead`` maps its ``forward_single`` over a *list* of feature
    levels (``multi_apply``), while
    :class:`mtl_fusion.models.detectors.MultiTaskBEVFusion` hands every task
    head a single (B, C, Y, X) tensor (the SECONDFPN outputs concatenated).
    Iterating that tensor would walk over the batch instead of over levels,
    so this subclass wraps a tensor into a one-level list and leaves
    everything else (targets, losses, decoding, NMS) to ``CenterHead``.
    ``loss`` and ``predict`` go through ``forward``, so they accept either
    form too.

    The heatmap biases are set to ``SeparateHead.init_bias`` (-2.19) at
    construction: ``MultiTaskBEVFusion`` keeps its heads in a plain
    ``torch.nn.ModuleDict``, which mmengine's ``BaseModule.init_weights``
    does not descend into, so ``SeparateHead.init_weights`` would never run
    and the focal heatmap loss would start from p = 0.5 instead of ~0.1.
    (Once the detector uses ``mmengine.model.ModuleDict``, the regular
    initialisation sets the same value again.)

    Args:
        **kwargs: Arguments of :class:`CenterHead` (``in_channels``,
            ``tasks``, ``common_heads``, ``bbox_coder``, ``train_cfg``,
            ``test_cfg``, ...). ``train_cfg``/``test_cfg`` must be the
            ``pts`` parts of a CenterPoint config: the multi-task detector
            gives no config to its heads.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        for task_head in self.task_heads:
            task_head.heatmap[-1].bias.data.fill_(task_head.init_bias)

    def forward(self, feats: Union[Tensor, Sequence[Tensor]]
                ) -> Tuple[List[dict]]:
        """Run the shared conv and the per-task branches.

        Args:
            feats (Tensor | Sequence[Tensor]): One (B, C, Y, X) BEV map or a
                sequence of such maps (feature levels).

        Returns:
            tuple[list[list[dict]]]: As :meth:`CenterHead.forward`: one
            entry per task group, each a list over feature levels of
            prediction dicts.
        """
        if isinstance(feats, Tensor):
            if feats.dim() != 4:
                raise ValueError('BEVCenterHead expects a (B, C, Y, X) BEV '
                                 f'tensor, got shape {tuple(feats.shape)}')
            feats = [feats]
        return super().forward(list(feats))
