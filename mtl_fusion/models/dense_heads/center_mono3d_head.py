"""Centre-based monocular 3D detection head (MonoDLE style) with pitch and
roll."""
import math
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmcv.cnn import ConvModule
from mmdet3d.models.utils import clip_sigmoid
from mmdet3d.registry import MODELS, TASK_UTILS
from mmdet3d.structures import (CameraInstance3DBoxes, Det3DDataSample,
                                limit_period, points_img2cam)
from mmdet.models.utils import (gaussian_radius, gen_gaussian_target,
                                get_local_maximum, get_topk_from_heatmap,
                                transpose_and_gather_feat)
from mmdet.utils import ConfigType, OptConfigType
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import Tensor, nn

from mtl_fusion.utils.loss_keys import samples_with_labels
# importing task_modules registers the angle coder
from .. import task_modules  # noqa: F401
from ..utils import levels_to_tensor

__all__ = ['CenterMono3DHead']

Features = Union[Tensor, Sequence[Tensor]]

#: Rough per-class mean sizes (l, h, w) in metres of the Cityscapes-3D
#: classes (car, truck, bus, train, motorcycle, bicycle, caravan, trailer);
#: priors only, recompute them from the training set for real data.
CITYSCAPES3D_MEAN_SIZES = ((4.3, 1.6, 1.8), (7.0, 3.0, 2.5),
                           (11.0, 3.2, 2.6), (20.0, 3.8, 3.0),
                           (2.1, 1.5, 0.8), (1.8, 1.4, 0.6),
                           (5.8, 2.7, 2.3), (5.0, 2.5, 2.2))

#: Ground-truth fields the loss reads from ``gt_instances_3d``.
GT_FIELDS = ('bboxes_3d', 'labels_3d', 'pitch', 'roll', 'centers_2d',
             'depths', 'bboxes')

#: Loss keys, in the order :meth:`CenterMono3DHead.loss` returns them.
LOSS_KEYS = ('loss_heatmap', 'loss_offset_3d', 'loss_offset_2d',
             'loss_size_2d', 'loss_depth', 'loss_size_3d', 'loss_alpha_cls',
             'loss_alpha_res', 'loss_pitch', 'loss_roll')
#: Logged next to the losses (no ``'loss'`` in it, so not optimised): the
#: number of labelled objects of the batch that got no cell.
UNASSIGNED_KEY = 'num_unassigned'

TRAIN_DEFAULTS = dict(gaussian_overlap=0.7, min_radius=0)
TEST_DEFAULTS = dict(
    topk=50,
    local_maximum_kernel=3,
    score_thr=0.1,
    max_per_img=50,
    depth_score=True)


@MODELS.register_module()
class CenterMono3DHead(BaseModule):
    """Centre-based monocular 3D detection on one feature map (MonoDLE).

    Every output has its own CRC branch (3x3 conv - ReLU - 1x1 conv) on the
    (B, in_channels, H, W) feature at stride ``stride``. The outputs
    (:meth:`forward`, channel layout in brackets):

    - ``heatmap`` [num_classes]: logits of the per-class heatmap of the
      projected 3D box centres (geometric centre); bias starts at -2.19.
    - ``offset_3d`` [2]: projected 3D centre / stride minus its integer
      cell (x, y), sub-pixel.
    - ``offset_2d`` [2]: centre of the amodal 2D box / stride minus the
      same cell (x, y).
    - ``size_2d`` [2]: 2D box width and height / stride.
    - ``depth`` [2]: raw depth ``r`` (depth ``1 / (sigmoid(r) + eps) - 1``
      metres, CenterNet's transform) and ``log b``, the log scale of a
      Laplacian on the depth (standard deviation ``sigma = sqrt(2) * b``).
    - ``size_3d`` [3]: (l, h, w) minus the class's mean size, metres.
    - ``alpha`` [2 * num_bins]: bin logits and per-bin residuals of the
      observation angle alpha, :class:`MultiBinAngleCoder`.
    - ``pitch_roll`` [2]: pitch and roll in radians.

    **Targets.** An object is assigned to the cell ``floor(centers_2d /
    stride)`` of its projected 3D centre; its class heatmap gets a Gaussian
    there (mmdet's ``gaussian_radius`` of the 2D box size in cells with
    ``gaussian_overlap``, at least ``min_radius``; ``gen_gaussian_target``).
    Objects whose projected centre lies outside the feature map, or whose
    depth is not positive, have no cell and get no target: a centre-based
    head cannot represent them. Their number in the batch is returned
    next to the losses as ``num_unassigned`` (logged, not optimised), so
    a dataset whose boxes mostly fall outside the image shows it in the
    training log. Two objects in one cell both contribute
    their regression terms at that cell.

    **Losses** (all weights default to 1): Gaussian focal loss on the
    heatmap (averaged over the number of peaks); L1 on ``offset_3d``,
    ``offset_2d``, ``size_2d``, ``size_3d`` and the residual of the ground
    truth alpha bin; cross-entropy on the alpha bins; mmdet3d's
    ``UncertainL1Loss`` on the depth, ``exp(-log b) * |d - d*| + log b``,
    which is the Laplacian negative log-likelihood ``sqrt(2) / sigma *
    |d - d*| + log sigma`` of MonoDLE up to the constant ``log sqrt(2)``;
    pitch and roll with FCOS3D's sine difference, a smooth L1 between
    ``sin(p) cos(p*)`` and ``cos(p) sin(p*)``, i.e. on ``sin(p - p*)``
    (meant for the small pitch and roll of road scenes: it cannot tell
    ``p`` from ``p + pi``). The regression losses are means over the
    objects with a cell in the batch; without any they are zeros connected
    to the graph. Samples whose metainfo says ``has_det_labels=False`` are
    left out (:meth:`labelled_samples`).

    **Decoding** (:meth:`predict`): sigmoid heatmap, max-pool local maxima
    (``local_maximum_kernel``), the ``topk`` best cells over all classes;
    the projected centre ``(cell + offset_3d) * stride`` and the depth are
    back-projected with the sample's ``cam2img`` (mmdet3d's
    ``points_img2cam``; 3x3, 3x4 or 4x4); sizes are the class mean plus the
    offset (clamped to >= 1e-3); the yaw is ``alpha + atan2(x, z)`` of the
    centre, wrapped to [-pi, pi); the box is stored by its bottom centre
    (``y + h / 2``, camera y points down). With a 3x4 / 4x4 ``cam2img``
    whose third row holds a translation, the depth is the projective depth
    (the third homogeneous coordinate), as in ``points_img2cam``. The 2D
    box is ``(cell + offset_2d) * stride -+ max(size_2d, 0) * stride / 2``,
    clipped to the
    metainfo's ``img_shape`` when given. The score is the heatmap peak,
    times ``exp(-sigma)`` of the depth when ``depth_score`` is set; boxes
    below ``score_thr`` go, the ``max_per_img`` best remain.

    Args:
        in_channels (int): Channels of the input feature. Defaults to 256.
        feat_channels (int): Hidden channels of each CRC branch.
            Defaults to 256.
        num_classes (int): Number of classes. Defaults to 8 (Cityscapes-3D).
        stride (int): Stride of the feature map in input pixels.
            Defaults to 8.
        mean_sizes (Sequence[Sequence[float]]): Per-class mean (l, h, w) in
            metres, ``num_classes`` rows. Defaults to
            ``CITYSCAPES3D_MEAN_SIZES``.
        num_alpha_bins (int): Bins of the alpha coder. Defaults to 12.
        depth_eps (float): ``eps`` of the depth transform. Defaults to 1e-6.
        gaussian_overlap (float, optional): ``min_overlap`` of
            ``gaussian_radius``. Defaults to None: ``train_cfg``'s, else 0.7.
        min_radius (int, optional): Smallest Gaussian radius in cells.
            Defaults to None: ``train_cfg``'s, else 0.
        loss_heatmap (dict): Heatmap loss. Defaults to
            ``mmdet.GaussianFocalLoss``, weight 1.
        loss_offset_3d (dict): Loss of the 3D centre offset. Defaults to
            ``mmdet.L1Loss``, weight 1.
        loss_offset_2d (dict): Loss of the 2D box centre offset. Defaults to
            ``mmdet.L1Loss``, weight 1.
        loss_size_2d (dict): Loss of the 2D box size. Defaults to
            ``mmdet.L1Loss``, weight 1.
        loss_depth (dict): Depth loss with uncertainty, called as
            ``loss(depth, target, log_b)``. Defaults to
            ``UncertainL1Loss`` (alpha 1), weight 1.
        loss_size_3d (dict): Loss of the 3D size offsets. Defaults to
            ``mmdet.L1Loss``, weight 1.
        loss_alpha_cls (dict): Loss of the alpha bins. Defaults to
            ``mmdet.CrossEntropyLoss``, weight 1.
        loss_alpha_res (dict): Loss of the alpha residual. Defaults to
            ``mmdet.L1Loss``, weight 1.
        loss_pitch_roll (dict): Loss on the sine differences of pitch and
            of roll (reported as ``loss_pitch`` and ``loss_roll``). Defaults
            to ``mmdet.SmoothL1Loss`` (beta 1/9, as FCOS3D), weight 1.
        conv_cfg (dict, optional): Conv of the branches' 3x3 layer.
            Defaults to None (Conv2d).
        norm_cfg (dict, optional): Norm after the 3x3 conv. Defaults to
            None (the CRC of the paper has none).
        train_cfg (dict, optional): ``gaussian_overlap`` and
            ``min_radius``, as the arguments. Defaults to None.
        test_cfg (dict, optional): ``topk`` (50), ``local_maximum_kernel``
            (3), ``score_thr`` (0.1), ``max_per_img`` (50) and
            ``depth_score`` (True). Defaults to None.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    #: Data-sample field that :meth:`predict` fills.
    pred_field = 'pred_instances_3d'
    #: Feature format the head asks a multi-task detector for.
    feat_format = 'tensor'

    def __init__(self,
                 in_channels: int = 256,
                 feat_channels: int = 256,
                 num_classes: int = 8,
                 stride: int = 8,
                 mean_sizes: Sequence[Sequence[float]] = (
                     CITYSCAPES3D_MEAN_SIZES),
                 num_alpha_bins: int = 12,
                 depth_eps: float = 1e-6,
                 gaussian_overlap: Optional[float] = None,
                 min_radius: Optional[int] = None,
                 loss_heatmap: ConfigType = dict(
                     type='mmdet.GaussianFocalLoss', loss_weight=1.0),
                 loss_offset_3d: ConfigType = dict(
                     type='mmdet.L1Loss', loss_weight=1.0),
                 loss_offset_2d: ConfigType = dict(
                     type='mmdet.L1Loss', loss_weight=1.0),
                 loss_size_2d: ConfigType = dict(
                     type='mmdet.L1Loss', loss_weight=1.0),
                 loss_depth: ConfigType = dict(
                     type='UncertainL1Loss', alpha=1.0, loss_weight=1.0),
                 loss_size_3d: ConfigType = dict(
                     type='mmdet.L1Loss', loss_weight=1.0),
                 loss_alpha_cls: ConfigType = dict(
                     type='mmdet.CrossEntropyLoss', loss_weight=1.0),
                 loss_alpha_res: ConfigType = dict(
                     type='mmdet.L1Loss', loss_weight=1.0),
                 loss_pitch_roll: ConfigType = dict(
                     type='mmdet.SmoothL1Loss',
                     beta=1.0 / 9.0,
                     loss_weight=1.0),
                 conv_cfg: OptConfigType = None,
                 norm_cfg: OptConfigType = None,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 init_cfg: OptConfigType = None) -> None:
        super().__init__(init_cfg=init_cfg)
        name = type(self).__name__
        for arg, value in (('in_channels', in_channels),
                           ('feat_channels', feat_channels),
                           ('num_classes', num_classes), ('stride', stride)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f'{name}: {arg} must be a positive int, '
                                 f'got {value!r}')
        mean = torch.as_tensor(mean_sizes, dtype=torch.float32)
        if mean.shape != (num_classes, 3) or not (mean > 0).all():
            raise ValueError(f'{name}: mean_sizes must hold one positive '
                             f'(l, h, w) per class ({num_classes} rows), got '
                             f'shape {tuple(mean.shape)}')
        if depth_eps <= 0:
            raise ValueError(f'{name}: depth_eps must be > 0, got '
                             f'{depth_eps}')
        train = self._settings('train_cfg', train_cfg, TRAIN_DEFAULTS,
                               dict(gaussian_overlap=gaussian_overlap,
                                    min_radius=min_radius))
        if not 0 < train['gaussian_overlap'] < 1:
            raise ValueError(f'{name}: gaussian_overlap must be in (0, 1), '
                             f'got {train["gaussian_overlap"]}')
        if train['min_radius'] < 0:
            raise ValueError(f'{name}: min_radius must be >= 0, got '
                             f'{train["min_radius"]}')
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.stride = stride
        self.depth_eps = depth_eps
        self.gaussian_overlap = float(train['gaussian_overlap'])
        self.min_radius = int(train['min_radius'])
        self.train_cfg = train_cfg
        self.test_cfg = self._settings('test_cfg', test_cfg, TEST_DEFAULTS)
        if self.test_cfg['topk'] < 1 or self.test_cfg['max_per_img'] < 1:
            raise ValueError(f'{name}: test_cfg topk and max_per_img must be '
                             f'>= 1, got {self.test_cfg}')
        self.register_buffer('mean_sizes', mean, persistent=False)
        self.alpha_coder = TASK_UTILS.build(
            dict(type='MultiBinAngleCoder', num_bins=num_alpha_bins))

        self.branch_channels = dict(
            heatmap=num_classes,
            offset_3d=2,
            offset_2d=2,
            size_2d=2,
            depth=2,
            size_3d=3,
            alpha=self.alpha_coder.code_size,
            pitch_roll=2)
        self.branches = nn.ModuleDict({
            key: nn.Sequential(
                ConvModule(
                    in_channels,
                    feat_channels,
                    kernel_size=3,
                    padding=1,
                    conv_cfg=conv_cfg,
                    norm_cfg=norm_cfg,
                    act_cfg=dict(type='ReLU')),
                nn.Conv2d(feat_channels, channels, kernel_size=1))
            for key, channels in self.branch_channels.items()
        })
        self.loss_heatmap = MODELS.build(loss_heatmap)
        self.loss_offset_3d = MODELS.build(loss_offset_3d)
        self.loss_offset_2d = MODELS.build(loss_offset_2d)
        self.loss_size_2d = MODELS.build(loss_size_2d)
        self.loss_depth = MODELS.build(loss_depth)
        self.loss_size_3d = MODELS.build(loss_size_3d)
        self.loss_alpha_cls = MODELS.build(loss_alpha_cls)
        self.loss_alpha_res = MODELS.build(loss_alpha_res)
        self.loss_pitch_roll = MODELS.build(loss_pitch_roll)

    def _settings(self, name: str, cfg: Optional[dict], defaults: dict,
                  args: Optional[dict] = None) -> dict:
        """Merge a train / test cfg over defaults; arguments win unless the
        cfg sets another value, which is an error."""
        cfg = dict(cfg or {})
        unknown = sorted(set(cfg) - set(defaults))
        if unknown:
            raise KeyError(f'{type(self).__name__}: {name} has unknown keys '
                           f'{unknown}; allowed: {sorted(defaults)}')
        out = dict(defaults)
        out.update(cfg)
        for key, value in (args or {}).items():
            if value is None:
                continue
            if key in cfg and cfg[key] != value:
                raise ValueError(f'{type(self).__name__}: {key} is '
                                 f'{value} as an argument but {cfg[key]} in '
                                 f'{name}; set it in one place')
            out[key] = value
        return out

    def init_weights(self) -> None:
        """Initialise weights; the heatmap bias starts at -2.19."""
        super().init_weights()
        nn.init.constant_(self.branches['heatmap'][-1].bias, -2.19)

    # ------------------------------------------------------------------ #
    # forward
    # ------------------------------------------------------------------ #
    def forward(self, feats: Features) -> Dict[str, Tensor]:
        """Raw outputs of every branch.

        Args:
            feats (Tensor | Sequence[Tensor]): (B, in_channels, H, W), or
                feature levels that concatenate to it.

        Returns:
            dict[str, Tensor]: ``{branch: (B, C_branch, H, W)}``, layout in
            the class docstring.
        """
        feats = levels_to_tensor(feats, type(self).__name__)
        if feats.dim() != 4 or feats.shape[1] != self.in_channels:
            raise ValueError(f'{type(self).__name__}: feats must be (B, '
                             f'{self.in_channels}, H, W), got '
                             f'{tuple(feats.shape)}')
        return {key: branch(feats) for key, branch in self.branches.items()}

    # ------------------------------------------------------------------ #
    # targets
    # ------------------------------------------------------------------ #
    def decode_depth(self, raw: Tensor) -> Tensor:
        """Depth in metres from the raw output, ``1 / (sigmoid(r) + eps) -
        1``.

        Args:
            raw (Tensor): Raw depth output, any shape.

        Returns:
            Tensor: Depth, same shape.
        """
        return 1.0 / (raw.sigmoid() + self.depth_eps) - 1.0

    def _gt_of(self, sample: Det3DDataSample, index: int) -> Dict[str, Tensor]:
        """The ground-truth fields of one sample, checked."""
        owner = f'{type(self).__name__}: batch_data_samples[{index}]'
        if 'gt_instances_3d' not in sample:
            raise KeyError(f'{owner} has no gt_instances_3d (mark samples '
                           'without 3D boxes with has_det_labels=False)')
        gt = sample.gt_instances_3d
        for key in ('bboxes_3d', 'labels_3d'):
            if key not in gt:
                raise KeyError(f'{owner}.gt_instances_3d has no {key}')
        boxes = gt.bboxes_3d
        if not isinstance(boxes, CameraInstance3DBoxes):
            raise TypeError(f'{owner}.gt_instances_3d.bboxes_3d must be '
                            'CameraInstance3DBoxes, got '
                            f'{type(boxes).__name__}')
        num = len(boxes)
        out = dict(bboxes_3d=boxes)
        shapes = dict(labels_3d=(num, ), pitch=(num, ), roll=(num, ),
                      centers_2d=(num, 2), depths=(num, ), bboxes=(num, 4))
        for key, shape in shapes.items():
            if key not in gt:
                if num == 0:  # nothing to read for an empty sample
                    out[key] = boxes.tensor.new_zeros(shape)
                    continue
                raise KeyError(f'{owner}.gt_instances_3d has no {key} '
                               f'(fields needed: {list(GT_FIELDS)})')
            value = torch.as_tensor(gt[key])
            if tuple(value.shape) != shape:
                raise ValueError(f'{owner}.gt_instances_3d.{key} must have '
                                 f'shape {shape} for {num} boxes, got '
                                 f'{tuple(value.shape)}')
            out[key] = value
        labels = out['labels_3d'].long()
        if num and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise ValueError(f'{owner}.gt_instances_3d.labels_3d must be in '
                             f'[0, {self.num_classes}), got '
                             f'{labels.tolist()}')
        out['labels_3d'] = labels
        return out

    def get_targets(self, gts: Sequence[Dict[str, Tensor]],
                    feat_shape: Tuple[int, int],
                    device: Union[str, torch.device] = 'cpu'
                    ) -> Tuple[Tensor, Dict[str, Tensor]]:
        """Heatmaps and per-object regression targets.

        Args:
            gts (Sequence[dict]): Per sample the checked ground truth
                (``bboxes_3d``, ``labels_3d``, ``pitch``, ``roll``,
                ``centers_2d``, ``depths``, ``bboxes``).
            feat_shape (tuple[int, int]): (H, W) of the feature map.
            device (str | torch.device): Device of the targets.
                Defaults to 'cpu'.

        Returns:
            tuple[Tensor, dict[str, Tensor]]: The (len(gts), num_classes,
            H, W) heatmap and, for the N objects with a cell, ``batch``
            (N,) sample position in ``gts``, ``index`` (N,) flat cell
            ``y * W + x``, ``labels`` (N,), ``offset_3d``, ``offset_2d``,
            ``size_2d`` (N, 2) in cells, ``depth`` (N,), ``size_3d``
            (N, 3) offsets from the mean size, ``alpha_bin`` (N,) long,
            ``alpha_res`` (N,), ``pitch`` (N,), ``roll`` (N,).
        """
        height, width = feat_shape
        heatmap = torch.zeros(len(gts), self.num_classes, height, width,
                              device=device)
        per_key: Dict[str, List[Tensor]] = {}
        for b, gt in enumerate(gts):
            boxes = gt['bboxes_3d'].to(device)
            labels = gt['labels_3d'].to(device)
            centers = gt['centers_2d'].to(device).float() / self.stride
            depths = gt['depths'].to(device).float()
            bboxes = gt['bboxes'].to(device).float() / self.stride
            cells = centers.floor()
            keep = ((cells[:, 0] >= 0) & (cells[:, 0] < width) &
                    (cells[:, 1] >= 0) & (cells[:, 1] < height) &
                    (depths > 0) & torch.isfinite(centers).all(1))
            keep = keep.nonzero(as_tuple=False).squeeze(1)
            cells = cells[keep]
            size_2d = torch.stack([bboxes[keep, 2] - bboxes[keep, 0],
                                   bboxes[keep, 3] - bboxes[keep, 1]], 1)
            box_centers = torch.stack(
                [bboxes[keep, 0] + bboxes[keep, 2],
                 bboxes[keep, 1] + bboxes[keep, 3]], 1) / 2
            cell_x, cell_y = cells[:, 0].long(), cells[:, 1].long()
            for k in range(len(keep)):
                radius = gaussian_radius(
                    (float(size_2d[k, 1]), float(size_2d[k, 0])),
                    self.gaussian_overlap)
                radius = max(self.min_radius, int(radius))
                gen_gaussian_target(heatmap[b, labels[keep[k]]],
                                    [int(cell_x[k]), int(cell_y[k])],
                                    radius)
            kept_labels = labels[keep]
            alpha = boxes.local_yaw[keep]
            alpha_bin, alpha_res = self.alpha_coder.encode(alpha)
            values = dict(
                batch=torch.full_like(kept_labels, b),
                index=cell_y * width + cell_x,
                labels=kept_labels,
                offset_3d=centers[keep] - cells,
                offset_2d=box_centers - cells,
                size_2d=size_2d,
                depth=depths[keep],
                size_3d=boxes.dims[keep] -
                self.mean_sizes.to(device)[kept_labels],
                alpha_bin=alpha_bin,
                alpha_res=alpha_res,
                pitch=gt['pitch'].to(device).float()[keep],
                roll=gt['roll'].to(device).float()[keep])
            for key, value in values.items():
                per_key.setdefault(key, []).append(value)
        targets = {key: torch.cat(value) for key, value in per_key.items()}
        return heatmap, targets

    # ------------------------------------------------------------------ #
    # loss
    # ------------------------------------------------------------------ #
    @staticmethod
    def labelled_samples(batch_data_samples: List[Det3DDataSample]
                         ) -> List[int]:
        """Indices of the samples whose boxes the loss uses: all but those
        whose metainfo says ``has_det_labels=False``."""
        return samples_with_labels(batch_data_samples, 'has_det_labels')

    def loss(self, feats: Features,
             batch_data_samples: List[Det3DDataSample]) -> Dict[str, Tensor]:
        """Detection losses.

        Args:
            feats (Tensor | Sequence[Tensor]): (B, in_channels, H, W).
            batch_data_samples (list[:obj:`Det3DDataSample`]): One per
                sample, with ``gt_instances_3d`` (fields ``bboxes_3d``,
                ``labels_3d``, ``pitch``, ``roll``, ``centers_2d``,
                ``depths``, ``bboxes``) unless the metainfo has
                ``has_det_labels=False``.

        Returns:
            dict[str, Tensor]: The keys of ``LOSS_KEYS`` and
            ``UNASSIGNED_KEY``.
        """
        return self.loss_by_feat(self(feats), batch_data_samples)

    def loss_by_feat(self, outputs: Dict[str, Tensor],
                     batch_data_samples: List[Det3DDataSample]
                     ) -> Dict[str, Tensor]:
        """Detection losses from :meth:`forward` outputs.

        Args:
            outputs (dict[str, Tensor]): Output of :meth:`forward`.
            batch_data_samples (list[:obj:`Det3DDataSample`]): Samples.

        Returns:
            dict[str, Tensor]: The keys of ``LOSS_KEYS`` and
            ``UNASSIGNED_KEY``.
        """
        heat_logits = outputs['heatmap']
        batch, _, height, width = heat_logits.shape
        if len(batch_data_samples) != batch:
            raise ValueError(f'{type(self).__name__}: batch_data_samples has '
                             f'{len(batch_data_samples)} samples but feats '
                             f'has batch size {batch}')
        zeros = {key: value.sum() * 0 for key, value in outputs.items()}
        labelled = self.labelled_samples(batch_data_samples)
        if not labelled:
            total = sum(zeros.values())
            losses = {key: total for key in LOSS_KEYS}
            losses[UNASSIGNED_KEY] = heat_logits.new_zeros(())
            return losses
        gts = [self._gt_of(batch_data_samples[i], i) for i in labelled]
        heat_target, tgt = self.get_targets(gts, (height, width),
                                            heat_logits.device)
        num_gt = sum(len(gt['labels_3d']) for gt in gts)
        unassigned = heat_logits.new_tensor(
            float(num_gt - len(tgt['labels'])))
        rows = torch.tensor(labelled, device=heat_logits.device)
        pred_heat = clip_sigmoid(heat_logits[rows])
        losses = dict(
            loss_heatmap=self.loss_heatmap(
                pred_heat,
                heat_target.to(pred_heat.dtype),
                avg_factor=max(float(heat_target.eq(1).sum()), 1.0)))
        num = len(tgt['labels'])
        if num == 0:
            losses.update(
                loss_offset_3d=zeros['offset_3d'],
                loss_offset_2d=zeros['offset_2d'],
                loss_size_2d=zeros['size_2d'],
                loss_depth=zeros['depth'],
                loss_size_3d=zeros['size_3d'],
                loss_alpha_cls=zeros['alpha'],
                loss_alpha_res=zeros['alpha'],
                loss_pitch=zeros['pitch_roll'],
                loss_roll=zeros['pitch_roll'])
            losses[UNASSIGNED_KEY] = unassigned
            return losses

        sample_rows = rows[tgt['batch']]

        def gather(key: str) -> Tensor:
            out = outputs[key]
            return out.flatten(2)[sample_rows, :, tgt['index']]

        losses['loss_offset_3d'] = self.loss_offset_3d(
            gather('offset_3d'), tgt['offset_3d'])
        losses['loss_offset_2d'] = self.loss_offset_2d(
            gather('offset_2d'), tgt['offset_2d'])
        losses['loss_size_2d'] = self.loss_size_2d(
            gather('size_2d'), tgt['size_2d'])
        depth = gather('depth')
        losses['loss_depth'] = self.loss_depth(
            self.decode_depth(depth[:, 0]), tgt['depth'], depth[:, 1])
        losses['loss_size_3d'] = self.loss_size_3d(
            gather('size_3d'), tgt['size_3d'])
        logits, residuals = self.alpha_coder.split(gather('alpha'))
        losses['loss_alpha_cls'] = self.loss_alpha_cls(
            logits, tgt['alpha_bin'])
        losses['loss_alpha_res'] = self.loss_alpha_res(
            residuals.gather(1, tgt['alpha_bin'][:, None]).squeeze(1),
            tgt['alpha_res'])
        pitch_roll = gather('pitch_roll')
        for col, key in enumerate(('pitch', 'roll')):
            pred, target = pitch_roll[:, col], tgt[key]
            # FCOS3D's sine difference: smooth L1 on sin(pred - target)
            losses[f'loss_{key}'] = self.loss_pitch_roll(
                pred.sin() * target.cos(),
                pred.cos() * target.sin())
        losses = {key: losses[key] for key in LOSS_KEYS}
        losses[UNASSIGNED_KEY] = unassigned
        return losses

    # ------------------------------------------------------------------ #
    # inference
    # ------------------------------------------------------------------ #
    def predict(self, feats: Features,
                batch_data_samples: List[Det3DDataSample]
                ) -> List[InstanceData]:
        """Decode boxes.

        Args:
            feats (Tensor | Sequence[Tensor]): (B, in_channels, H, W).
            batch_data_samples (list[:obj:`Det3DDataSample`]): One per
                sample, metainfo ``cam2img`` (and ``img_shape`` to clip the
                2D boxes).

        Returns:
            list[:obj:`InstanceData`]: Per sample ``bboxes_3d``
            (CameraInstance3DBoxes, bottom centre), ``scores_3d``,
            ``labels_3d``, ``pitch``, ``roll`` and ``bboxes`` (xyxy).
        """
        return self.predict_by_feat(self(feats), batch_data_samples)

    def predict_by_feat(self, outputs: Dict[str, Tensor],
                        batch_data_samples: List[Det3DDataSample]
                        ) -> List[InstanceData]:
        """Decode :meth:`forward` outputs into boxes (see the class
        docstring).

        Args:
            outputs (dict[str, Tensor]): Output of :meth:`forward`.
            batch_data_samples (list[:obj:`Det3DDataSample`]): Samples with
                metainfo ``cam2img`` (and optionally ``img_shape``).

        Returns:
            list[:obj:`InstanceData`]: As :meth:`predict`.
        """
        cfg = self.test_cfg
        heat = outputs['heatmap'].detach().sigmoid()
        batch, num_classes, height, width = heat.shape
        if len(batch_data_samples) != batch:
            raise ValueError(f'{type(self).__name__}: batch_data_samples has '
                             f'{len(batch_data_samples)} samples but feats '
                             f'has batch size {batch}')
        heat = get_local_maximum(heat, kernel=cfg['local_maximum_kernel'])
        topk = min(cfg['topk'], num_classes * height * width)
        scores, inds, labels, ys, xs = get_topk_from_heatmap(heat, k=topk)
        cells = torch.stack([xs.float(), ys.float()], dim=-1)  # (B, K, 2)
        reg = {
            key: transpose_and_gather_feat(value.detach(), inds)
            for key, value in outputs.items() if key != 'heatmap'
        }
        centers = (cells + reg['offset_3d']) * self.stride
        depth = self.decode_depth(reg['depth'][..., 0])
        sigma = math.sqrt(2) * reg['depth'][..., 1].exp()
        if cfg['depth_score']:
            scores = scores * torch.exp(-sigma)
        dims = (self.mean_sizes[labels] + reg['size_3d']).clamp(min=1e-3)
        alpha = self.alpha_coder.decode(reg['alpha'])
        box_centers = (cells + reg['offset_2d']) * self.stride
        half = reg['size_2d'].clamp(min=0) * self.stride / 2
        bboxes = torch.cat([box_centers - half, box_centers + half], dim=-1)

        results = []
        for b, sample in enumerate(batch_data_samples):
            cam2img = self._cam2img(sample, b, heat)
            xyz = points_img2cam(
                torch.cat([centers[b], depth[b, :, None]], dim=1), cam2img)
            yaw = limit_period(
                alpha[b] + torch.atan2(xyz[:, 0], xyz[:, 2]),
                offset=0.5,
                period=2 * math.pi)
            bottom = xyz.clone()
            bottom[:, 1] = bottom[:, 1] + dims[b, :, 1] / 2
            box2d = bboxes[b].clone()
            img_shape = sample.metainfo.get('img_shape')
            if img_shape is not None:
                box2d[:, 0::2] = box2d[:, 0::2].clamp(0, img_shape[1])
                box2d[:, 1::2] = box2d[:, 1::2].clamp(0, img_shape[0])
            keep = (scores[b] >= cfg['score_thr']).nonzero(
                as_tuple=False).squeeze(1)
            order = scores[b, keep].argsort(descending=True)
            keep = keep[order[:cfg['max_per_img']]]
            result = InstanceData()
            result.bboxes_3d = CameraInstance3DBoxes(
                torch.cat([bottom, dims[b], yaw[:, None]], dim=1)[keep],
                box_dim=7,
                origin=(0.5, 1.0, 0.5))
            result.scores_3d = scores[b, keep]
            result.labels_3d = labels[b, keep]
            result.pitch = reg['pitch_roll'][b, keep, 0]
            result.roll = reg['pitch_roll'][b, keep, 1]
            result.bboxes = box2d[keep]
            results.append(result)
        return results

    def _cam2img(self, sample: Det3DDataSample, index: int,
                 like: Tensor) -> Tensor:
        """The sample's ``cam2img`` as a float tensor, checked."""
        owner = f'{type(self).__name__}: batch_data_samples[{index}]'
        if 'cam2img' not in sample.metainfo:
            raise KeyError(f'{owner} has no metainfo cam2img (the camera '
                           'intrinsics of the network input)')
        cam2img = like.new_tensor(sample.metainfo['cam2img'])
        if cam2img.dim() != 2 or not (3 <= cam2img.shape[0] <= 4
                                      and 3 <= cam2img.shape[1] <= 4):
            raise ValueError(f'{owner}: metainfo cam2img must be 3x3, 3x4 '
                             f'or 4x4, got shape {tuple(cam2img.shape)}')
        return cam2img
