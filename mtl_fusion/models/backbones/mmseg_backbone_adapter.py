"""A real-time mmsegmentation backbone (DDRNet, PIDNet, BiSeNet) as the
image backbone of :class:`~mtl_fusion.models.detectors.TAGMultiTaskDetector`
(the Table II baselines with the same heads)."""
from typing import Dict, Optional

from mmcv.cnn import ConvModule
from mmdet3d.registry import MODELS
from mmdet3d.utils import ConfigType, OptMultiConfig
from mmengine.model import BaseModule
from torch import Tensor, nn

__all__ = ['MMSegBackboneAdapter']

#: What to install when mmsegmentation is missing.
MMSEG_REQUIREMENT = 'mmsegmentation==1.2.2 (with ftfy, regex, prettytable)'


def _seg_registry():
    """mmsegmentation's model registry, with a clear error when the
    package is not installed."""
    try:
        import mmseg.models  # noqa: F401  (registers the backbones)
        from mmseg.registry import MODELS as SEG_MODELS
    except ImportError as err:
        raise ImportError(
            'MMSegBackboneAdapter wraps an mmsegmentation backbone but '
            f'mmsegmentation cannot be imported ({err}); install '
            f'{MMSEG_REQUIREMENT}') from err
    return SEG_MODELS


@MODELS.register_module()
class MMSegBackboneAdapter(BaseModule):
    """An mmsegmentation backbone returning TAG's backbone dict.

    The wrapped backbone (built with mmsegmentation's registry, e.g.
    ``dict(type='DDRNet', channels=16)``, the type read as
    ``'mmseg.DDRNet'``) runs unchanged; forward hooks
    on two of its submodules give the semantic (deepest, low-resolution)
    and detail (high-resolution) features, and its final output (the
    fused 1/8 feature; element ``out_index`` when it returns several, e.g.
    DDRNet's auxiliary context feature in training mode comes first and
    is not used) becomes ``h``, optionally projected to ``out_channels``
    by a 1x1 conv with norm (no activation).

    For DDRNet (``channels = c``): ``semantic_module =
    'context_branch_layers.2'`` (16c channels, 1/64), ``detail_module =
    'spatial_branch_layers.2'`` (4c channels, 1/8), ``h`` = the fused
    output (4c channels, 1/8).

    Args:
        backbone (dict): mmsegmentation backbone config.
        semantic_module (str): Name (as in ``named_modules``) of the
            submodule whose output is ``x_semantic``. Defaults to
            ``'context_branch_layers.2'`` (DDRNet).
        detail_module (str): Name of the submodule whose output is
            ``x_detail``. Defaults to ``'spatial_branch_layers.2'``
            (DDRNet).
        in_channels (int, optional): Channels of the backbone output;
            needed with ``out_channels``. Defaults to None.
        out_channels (int, optional): Channels of ``h`` after a 1x1
            projection. Defaults to None (no projection).
        out_index (int): Element of a tuple / list output that is ``h``.
            Defaults to -1.
        norm_cfg (dict): Norm of the projection. Defaults to
            ``dict(type='BN')``.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    def __init__(self,
                 backbone: ConfigType,
                 semantic_module: str = 'context_branch_layers.2',
                 detail_module: str = 'spatial_branch_layers.2',
                 in_channels: Optional[int] = None,
                 out_channels: Optional[int] = None,
                 out_index: int = -1,
                 norm_cfg: ConfigType = dict(type='BN'),
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        cfg = dict(backbone)
        if isinstance(cfg.get('type'), str) and '.' not in cfg['type']:
            # build from mmsegmentation's registry whatever the default
            # scope (mmdet3d in this package's configs)
            cfg['type'] = f"mmseg.{cfg['type']}"
        self.backbone = _seg_registry().build(cfg)
        modules = dict(self.backbone.named_modules())
        self._captured: Dict[str, Tensor] = {}
        for key, name in (('x_semantic', semantic_module),
                          ('x_detail', detail_module)):
            if name not in modules:
                children = [n for n, _ in self.backbone.named_children()]
                raise KeyError(
                    f'MMSegBackboneAdapter: {type(self.backbone).__name__} '
                    f'has no submodule {name!r} for {key} (its top-level '
                    f'modules: {children})')
            modules[name].register_forward_hook(self._hook(key))
        self.out_index = out_index
        if out_channels is not None:
            if in_channels is None:
                raise ValueError('MMSegBackboneAdapter: out_channels needs '
                                 'in_channels (the backbone output '
                                 'channels)')
            self.proj = ConvModule(
                in_channels, out_channels, 1, norm_cfg=norm_cfg,
                act_cfg=None)
        else:
            self.proj = nn.Identity()

    def _hook(self, key: str):
        def hook(module, args, output):
            self._captured[key] = output
        return hook

    def forward(self, x: Tensor) -> Dict[str, Tensor]:
        """Run the wrapped backbone.

        Args:
            x (Tensor): (B, 3, H, W) images.

        Returns:
            dict[str, Tensor]: ``h`` (the backbone output, projected, at
            1/8), ``x_semantic`` and ``x_detail`` (the hooked outputs).
        """
        self._captured.clear()
        out = self.backbone(x)
        if isinstance(out, (tuple, list)):
            out = out[self.out_index]
        missing = [k for k in ('x_semantic', 'x_detail')
                   if k not in self._captured]
        if missing:
            raise RuntimeError(f'MMSegBackboneAdapter: the hooked modules '
                               f'of {missing} did not run in '
                               f'{type(self.backbone).__name__}.forward')
        height, width = x.shape[-2:]
        if tuple(out.shape[-2:]) not in ((height // 8, width // 8),
                                         (-(-height // 8), -(-width // 8))):
            raise ValueError(
                f'MMSegBackboneAdapter: the backbone output has size '
                f'{tuple(out.shape[-2:])}, not 1/8 of the input '
                f'{(height, width)}; choose out_index')
        result = dict(h=self.proj(out), **self._captured)
        self._captured.clear()
        return result
