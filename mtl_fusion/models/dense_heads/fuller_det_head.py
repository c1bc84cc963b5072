"""Fuller-det: a one-layer query head for 3D detection on BEV features."""
import copy
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule, build_conv_layer
from mmdet3d.models.dense_heads.centerpoint_head import SeparateHead
from mmdet3d.models.utils import (clip_sigmoid, draw_heatmap_gaussian,
                                  gaussian_radius)
from mmdet3d.registry import MODELS, TASK_UTILS
from mmdet3d.structures import Det3DDataSample, LiDARInstance3DBoxes
from mmdet.utils import ConfigType, OptConfigType
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import Tensor, nn

from mtl_fusion.utils.loss_keys import samples_with_labels
# importing task_modules registers the coder, assigner and costs
from .. import task_modules  # noqa: F401
from ..layers import CoordEncoding, build_query_decoder_layer
from ..utils import grid_shape, levels_to_tensor
from .fuller_det_cfg import (TEST_GEOMETRY_KEYS, TRAIN_GEOMETRY_KEYS,
                             check_geometry, test_settings, train_settings)

__all__ = ['FullerDetHead']

Features = Union[Tensor, Sequence[Tensor]]


@MODELS.register_module()
class FullerDetHead(BaseModule):
    """Fuller-det: TransFusion-style query head with one decoder layer.

    A heatmap branch predicts per-class centre heatmaps on the BEV feature.
    The top ``num_proposals`` local maxima (``nms_kernel_size`` max-pool NMS
    of the sigmoid heatmap, over all classes) become queries: the BEV feature
    at the peak plus a class embedding (1x1 conv of the one-hot class). One
    transformer decoder layer (self-attention among queries, cross-attention
    to all BEV tokens, FFN; learned positional encoding of the BEV
    coordinates for queries and tokens) refines them, and per-query branches
    predict the centre offset (cells, added to the peak position), height,
    log size, (sin, cos) of the yaw, velocity and class logits.

    Training: Hungarian matching (focal class cost, normalised BEV centre L1,
    3D IoU), sigmoid focal class loss, L1 box loss on the codes of
    :class:`FullerBBoxCoder` weighted by ``code_weights`` and Gaussian focal
    loss on the heatmap. Losses are summed over the labelled samples of the
    batch and divided by the number of matched queries (class and box
    losses) or heatmap peaks (heatmap loss) over those samples, so a sample
    whose metainfo says ``has_det_labels=False`` contributes nothing.

    Features: a (B, in_channels, Y, X) tensor, or a list of feature levels
    as mmdet3d detectors pass them (one level is used as it is, several of
    the same size are concatenated along channels), so the head also works
    as ``pts_bbox_head`` of mmdet3d's ``CenterPoint``.

    Configs: ``train_cfg`` and ``test_cfg`` accept the head's own keys and
    the keys of CenterPoint's ``train_cfg.pts`` / ``test_cfg.pts`` by this
    rule; anything else is a KeyError naming the head and the keys.

    - ``train_cfg``: ``gaussian_overlap``, ``min_radius`` and
      ``code_weights`` mean the same as the constructor arguments (and as in
      ``CenterHead``: the code layout is the same); the argument left at
      None takes the train_cfg value, and both set to different values is
      an error. ``point_cloud_range``, ``voxel_size`` (x, y),
      ``out_size_factor`` and ``grid_size`` (x, y) are checked against the
      head's geometry. ``max_objs`` and ``dense_reg`` (dense target sizes
      of CenterHead) are rejected.
    - ``test_cfg``: ``score_threshold``, ``max_num`` (alias
      ``max_per_img``) and ``post_center_range`` (alias
      ``post_center_limit_range``); ``pc_range``, ``voxel_size`` and
      ``out_size_factor`` are checked against the geometry; the NMS keys
      ``nms_thr``, ``pre_max_size``, ``post_max_size``, ``max_pool_nms``,
      ``min_radius`` and ``nms_type`` (unless None) are rejected: the head
      predicts one box per query and applies no NMS.

    Args:
        in_channels (int): Channels of the BEV feature. Defaults to 512.
        num_classes (int): Number of classes. Defaults to 10.
        hidden_channels (int): Query / token width. Defaults to 128.
        num_proposals (int): Number of queries K. Defaults to 200.
        num_heads (int): Attention heads. Defaults to 8.
        ffn_channels (int): Hidden width of the decoder FFN.
            Defaults to 256.
        dropout (float): Dropout in the decoder layer. Defaults to 0.1.
        nms_kernel_size (int): Max-pool kernel of the heatmap NMS.
            Defaults to 3.
        head_conv (int): Hidden width of the prediction branches.
            Defaults to 64.
        num_branch_convs (int): Layers per prediction branch.
            Defaults to 2.
        point_cloud_range (Sequence[float]): ``(x_min, y_min, z_min, x_max,
            y_max, z_max)``. Defaults to nuScenes ``(-54, -54, -5, 54, 54,
            3)``.
        voxel_size (Sequence[float]): Voxel size. Defaults to
            ``(0.075, 0.075, 0.2)``.
        out_size_factor (int): BEV stride in voxels. Defaults to 8.
        code_weights (Sequence[float], optional): Weights of the 10 code
            entries in the box loss. Defaults to None: ``train_cfg``'s, else
            ``[1.0] * 8 + [0.2, 0.2]``.
        gaussian_overlap (float, optional): ``min_overlap`` of
            ``gaussian_radius`` for the heatmap target. Defaults to None:
            ``train_cfg``'s, else 0.1.
        min_radius (int, optional): Minimum Gaussian radius in cells.
            Defaults to None: ``train_cfg``'s, else 2.
        assigner (dict): Assigner config; ``reg_cost`` gets the point cloud
            range filled in when it has none. Defaults to
            :class:`QueryHungarianAssigner3D` with weights 0.15 / 0.25 / 0.25.
        loss_cls (dict): Class loss. Defaults to sigmoid focal loss
            (gamma 2, alpha 0.25, weight 1).
        loss_bbox (dict): Box loss. Defaults to L1 with weight 0.25.
        loss_heatmap (dict): Heatmap loss. Defaults to Gaussian focal loss
            with weight 1.
        norm_cfg (dict): Norm of the heatmap conv. Defaults to BN2d.
        branch_norm_cfg (dict): Norm of the prediction branches.
            Defaults to BN1d.
        test_cfg (dict, optional): ``score_threshold`` (default 0.0),
            ``max_num`` (default ``num_proposals``) and ``post_center_range``
            (default None: no range filter, else ``(x_min, y_min, z_min,
            x_max, y_max, z_max)`` on decoded centres), plus the CenterPoint
            keys above. Defaults to None.
        train_cfg (dict, optional): Training settings and CenterPoint keys,
            see above. Defaults to None.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    #: Data-sample field that :meth:`predict` fills (read by
    #: :class:`~mtl_fusion.models.detectors.BaseMultiTaskDetector`).
    pred_field = 'pred_instances_3d'
    #: Feature format the head asks a multi-task detector for.
    feat_format = 'tensor'

    def __init__(self,
                 in_channels: int = 512,
                 num_classes: int = 10,
                 hidden_channels: int = 128,
                 num_proposals: int = 200,
                 num_heads: int = 8,
                 ffn_channels: int = 256,
                 dropout: float = 0.1,
                 nms_kernel_size: int = 3,
                 head_conv: int = 64,
                 num_branch_convs: int = 2,
                 point_cloud_range: Sequence[float] = (-54.0, -54.0, -5.0,
                                                       54.0, 54.0, 3.0),
                 voxel_size: Sequence[float] = (0.075, 0.075, 0.2),
                 out_size_factor: int = 8,
                 code_weights: Optional[Sequence[float]] = None,
                 gaussian_overlap: Optional[float] = None,
                 min_radius: Optional[int] = None,
                 assigner: ConfigType = dict(
                     type='QueryHungarianAssigner3D',
                     cls_cost=dict(type='mmdet.FocalLossCost', weight=0.15),
                     reg_cost=dict(type='BEVCenterL1Cost', weight=0.25),
                     iou_cost=dict(type='RotatedIoU3DCost', weight=0.25)),
                 loss_cls: ConfigType = dict(
                     type='mmdet.FocalLoss',
                     use_sigmoid=True,
                     gamma=2.0,
                     alpha=0.25,
                     reduction='mean',
                     loss_weight=1.0),
                 loss_bbox: ConfigType = dict(
                     type='mmdet.L1Loss', reduction='mean', loss_weight=0.25),
                 loss_heatmap: ConfigType = dict(
                     type='mmdet.GaussianFocalLoss',
                     reduction='mean',
                     loss_weight=1.0),
                 norm_cfg: ConfigType = dict(type='BN2d'),
                 branch_norm_cfg: ConfigType = dict(type='BN1d'),
                 test_cfg: OptConfigType = None,
                 train_cfg: OptConfigType = None,
                 init_cfg: OptConfigType = None) -> None:
        super().__init__(init_cfg=init_cfg)
        train = train_settings(
            type(self).__name__, train_cfg,
            dict(
                gaussian_overlap=gaussian_overlap,
                min_radius=min_radius,
                code_weights=code_weights))
        gaussian_overlap = train['gaussian_overlap']
        min_radius = train['min_radius']
        code_weights = train['code_weights']
        if num_classes < 1:
            raise ValueError(f'num_classes must be >= 1, got {num_classes}')
        if num_proposals < 1:
            raise ValueError('num_proposals must be >= 1, got '
                             f'{num_proposals}')
        if nms_kernel_size < 1 or nms_kernel_size % 2 == 0:
            raise ValueError('nms_kernel_size must be a positive odd int, '
                             f'got {nms_kernel_size}')
        if len(code_weights) != 10:
            raise ValueError('code_weights must have 10 values, got '
                             f'{len(code_weights)}')
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.hidden_channels = hidden_channels
        self.num_proposals = num_proposals
        self.nms_kernel_size = nms_kernel_size
        self.gaussian_overlap = gaussian_overlap
        self.min_radius = min_radius
        self.train_cfg = train_cfg
        self.test_cfg = test_settings(type(self).__name__, test_cfg,
                                      self.num_proposals)

        self.bbox_coder = TASK_UTILS.build(
            dict(
                type='FullerBBoxCoder',
                point_cloud_range=point_cloud_range,
                voxel_size=voxel_size,
                out_size_factor=out_size_factor,
                code_size=10))
        pc = self.bbox_coder.point_cloud_range
        res_x, res_y = self.bbox_coder.cell_size
        if abs(res_x - res_y) > 1e-6:
            raise ValueError('voxel_size x and y must be equal, got '
                             f'{voxel_size}')
        self.grid_size = grid_shape((pc[0], pc[1], pc[3], pc[4]), res_x,
                                    'point_cloud_range')
        owner = type(self).__name__
        check_geometry(owner, self.bbox_coder, self.grid_size, 'train_cfg',
                       train_cfg, TRAIN_GEOMETRY_KEYS)
        check_geometry(owner, self.bbox_coder, self.grid_size, 'test_cfg',
                       test_cfg, TEST_GEOMETRY_KEYS)
        assigner = copy.deepcopy(assigner)
        reg_cost = assigner.get('reg_cost')
        if isinstance(reg_cost, dict) and \
                reg_cost.get('type') == 'BEVCenterL1Cost':
            reg_cost.setdefault('point_cloud_range', pc)
        self.assigner = TASK_UTILS.build(assigner)
        self.loss_cls = MODELS.build(loss_cls)
        self.loss_bbox = MODELS.build(loss_bbox)
        self.loss_heatmap = MODELS.build(loss_heatmap)
        self.register_buffer(
            'code_weights',
            torch.tensor(code_weights, dtype=torch.float32),
            persistent=False)

        self.shared_conv = build_conv_layer(
            dict(type='Conv2d'),
            in_channels,
            hidden_channels,
            kernel_size=3,
            padding=1,
            bias=True)
        self.heatmap_head = nn.Sequential(
            ConvModule(
                hidden_channels,
                hidden_channels,
                kernel_size=3,
                padding=1,
                bias='auto',
                norm_cfg=norm_cfg),
            nn.Conv2d(hidden_channels, num_classes, kernel_size=3,
                      padding=1))
        self.class_encoding = nn.Conv1d(num_classes, hidden_channels, 1)
        self.pos_encoding = CoordEncoding(hidden_channels)
        self.decoder = build_query_decoder_layer(
            hidden_channels, num_heads, ffn_channels, dropout)
        branches = dict(
            center=(2, num_branch_convs),
            height=(1, num_branch_convs),
            dim=(3, num_branch_convs),
            rot=(2, num_branch_convs),
            vel=(2, num_branch_convs),
            heatmap=(num_classes, num_branch_convs))
        # SeparateHead with 1x1 Conv1d layers acts per query.
        self.prediction_heads = SeparateHead(
            hidden_channels,
            branches,
            head_conv=head_conv,
            final_kernel=1,
            conv_cfg=dict(type='Conv1d'),
            norm_cfg=branch_norm_cfg,
            bias='auto')

        num_y, num_x = self.grid_size
        ys, xs = torch.meshgrid(
            torch.arange(num_y, dtype=torch.float32) + 0.5,
            torch.arange(num_x, dtype=torch.float32) + 0.5,
            indexing='ij')
        # (Y * X, 2) cell centres in cells, x first; row-major like flatten.
        self.register_buffer(
            'bev_pos', torch.stack([xs, ys], dim=-1).view(-1, 2),
            persistent=False)

    def init_weights(self) -> None:
        """Initialise weights; heatmap and class biases start at -2.19."""
        super().init_weights()
        self.prediction_heads.heatmap[-1].bias.data.fill_(-2.19)
        self.heatmap_head[-1].bias.data.fill_(-2.19)

    # ------------------------------------------------------------------ #
    # forward
    # ------------------------------------------------------------------ #
    def _normalise_pos(self, pos: Tensor) -> Tensor:
        num_y, num_x = self.grid_size
        return pos / pos.new_tensor([num_x, num_y])

    def forward(self, feats: Features) -> Dict[str, Tensor]:
        """Predict heatmaps and per-query outputs.

        The queries sit at the peaks chosen by :meth:`select_proposals`
        from the detached sigmoid heatmap; what it returns is checked
        (shape (B, K), integer dtype, values in range), else a ValueError
        naming it.

        Args:
            feats (Tensor | Sequence[Tensor]): BEV feature of shape
                (B, in_channels, Y, X), or feature levels that concatenate
                to it.

        Returns:
            dict[str, Tensor]: ``dense_heatmap`` (B, num_classes, Y, X)
            logits; per query (last dim K): ``center`` (B, 2, K) in cells,
            ``height`` (B, 1, K), ``dim`` (B, 3, K) log sizes, ``rot``
            (B, 2, K) sin/cos, ``vel`` (B, 2, K), ``cls_logits``
            (B, num_classes, K); ``query_labels`` (B, K) heatmap classes of
            the peaks, ``query_heatmap_score`` (B, num_classes, K) sigmoid
            heatmap at the peaks.
        """
        feats = levels_to_tensor(feats, type(self).__name__)
        if feats.dim() != 4 or feats.shape[1] != self.in_channels or \
                tuple(feats.shape[-2:]) != tuple(self.grid_size):
            raise ValueError(
                f'feats must be (B, {self.in_channels}, '
                f'{self.grid_size[0]}, {self.grid_size[1]}) for this '
                f'point_cloud_range/voxel_size/out_size_factor, got '
                f'{tuple(feats.shape)}')
        batch_size = feats.shape[0]
        bev = self.shared_conv(feats)
        tokens = bev.flatten(2)  # (B, C, N)
        num_tokens = tokens.shape[-1]
        dense_heatmap = self.heatmap_head(bev)

        heatmap = dense_heatmap.detach().sigmoid()
        top_idx = self.select_proposals(heatmap)
        self._check_proposals(top_idx, heatmap)
        top_idx = top_idx.long()  # no copy when it is int64 already
        query_labels = torch.div(
            top_idx, num_tokens, rounding_mode='floor')
        query_index = top_idx % num_tokens  # (B, K)

        query_feat = tokens.gather(
            2, query_index[:, None, :].expand(-1, tokens.shape[1], -1))
        one_hot = F.one_hot(query_labels, self.num_classes).permute(
            0, 2, 1).to(query_feat.dtype)
        query_feat = query_feat + self.class_encoding(one_hot)
        query_pos = self.bev_pos[query_index]  # (B, K, 2)

        key_pos = self.pos_encoding(self._normalise_pos(self.bev_pos))
        query = self.decoder(
            query=query_feat.transpose(1, 2),
            key=tokens.transpose(1, 2),
            value=tokens.transpose(1, 2),
            query_pos=self.pos_encoding(self._normalise_pos(query_pos)),
            key_pos=key_pos[None].expand(batch_size, -1, -1))
        preds = self.prediction_heads(query.transpose(1, 2))
        preds['center'] = preds['center'] + query_pos.transpose(1, 2)
        preds['cls_logits'] = preds.pop('heatmap')
        preds['dense_heatmap'] = dense_heatmap
        preds['query_labels'] = query_labels
        preds['query_heatmap_score'] = heatmap.view(
            batch_size, self.num_classes, -1).gather(
                2, query_index[:, None, :].expand(-1, self.num_classes, -1))
        return preds

    def select_proposals(self, heatmap: Tensor) -> Tensor:
        """Choose the query positions: the top heatmap peaks.

        A cell is a peak of class c when its score is the maximum of its
        ``nms_kernel_size`` x ``nms_kernel_size`` neighbourhood in class c;
        the other cells score 0. The ``K = min(num_proposals, num_classes *
        Y * X)`` best peaks over all classes and cells are kept.

        :meth:`forward` calls this method and accepts any indices of the
        shape, type and range documented below, so a caller may replace it
        on an instance (e.g. a distiller that makes the student attend at
        the teacher's proposals).

        Args:
            heatmap (Tensor): (B, num_classes, Y, X) sigmoid class heatmap,
                detached.

        Returns:
            Tensor: (B, K) int64 flat indices ``class * (Y * X) + cell``,
            ``cell = y * X + x``, in descending order of score.
        """
        batch_size = heatmap.shape[0]
        num_cells = heatmap.shape[-2] * heatmap.shape[-1]
        pad = self.nms_kernel_size // 2
        local_max = F.max_pool2d(
            heatmap, kernel_size=self.nms_kernel_size, stride=1, padding=pad)
        peaks = heatmap * (heatmap == local_max)
        num_queries = min(self.num_proposals, self.num_classes * num_cells)
        return peaks.view(batch_size, -1).topk(num_queries, dim=-1).indices

    def _check_proposals(self, top_idx: Tensor, heatmap: Tensor) -> None:
        """Check what :meth:`select_proposals` returned."""
        batch_size = heatmap.shape[0]
        size = self.num_classes * heatmap.shape[-2] * heatmap.shape[-1]
        num_queries = min(self.num_proposals, size)
        where = f'{type(self).__name__}.select_proposals'
        if not isinstance(top_idx, Tensor):
            raise ValueError(f'{where} must return a Tensor, got '
                             f'{type(top_idx).__name__}')
        if top_idx.shape != (batch_size, num_queries):
            raise ValueError(
                f'{where} returned indices of shape '
                f'{tuple(top_idx.shape)}; expected (B, K) = ({batch_size}, '
                f'{num_queries}) with K = min(num_proposals, num_classes * '
                'Y * X); proposals from another model need the same batch, '
                'num_proposals, num_classes and BEV grid')
        if top_idx.is_floating_point() or top_idx.is_complex() or \
                top_idx.dtype == torch.bool:
            raise ValueError(f'{where} returned {top_idx.dtype} indices; '
                             'expected an integer dtype (int64)')
        if top_idx.device != heatmap.device:
            raise ValueError(f'{where} returned indices on {top_idx.device}'
                             f'; the heatmap is on {heatmap.device}')
        if top_idx.numel():
            low, high = torch.stack(torch.aminmax(top_idx)).tolist()
            if low < 0 or high >= size:
                raise ValueError(
                    f'{where} returned indices in [{low}, {high}]; expected '
                    f'[0, {size}) = [0, num_classes * Y * X)')

    @staticmethod
    def _codes(preds: Dict[str, Tensor]) -> Tensor:
        """Stack the regression branches into (B, K, 10) codes."""
        return torch.cat([
            preds['center'], preds['height'], preds['dim'], preds['rot'],
            preds['vel']
        ],
                         dim=1).transpose(1, 2)

    # ------------------------------------------------------------------ #
    # targets and losses
    # ------------------------------------------------------------------ #
    def _gt_of(self, data_sample: Det3DDataSample):
        gt = data_sample.gt_instances_3d
        if 'bboxes_3d' not in gt or 'labels_3d' not in gt:
            raise KeyError('gt_instances_3d needs "bboxes_3d" and '
                           '"labels_3d"')
        boxes = gt.bboxes_3d
        if not isinstance(boxes, LiDARInstance3DBoxes):
            raise TypeError('gt_instances_3d.bboxes_3d must be '
                            f'LiDARInstance3DBoxes, got {type(boxes)}')
        labels = gt.labels_3d.long()
        if len(labels) != len(boxes):
            raise ValueError('gt_instances_3d.labels_3d and bboxes_3d differ '
                             f'in length: {len(labels)} vs {len(boxes)}')
        if len(labels) and (labels.min() < 0
                            or labels.max() >= self.num_classes):
            raise ValueError('gt_instances_3d.labels_3d must lie in [0, '
                             f'{self.num_classes}), got {labels.tolist()}')
        return boxes, labels

    def get_heatmap_target(self, bboxes: LiDARInstance3DBoxes,
                           labels: Tensor) -> Tensor:
        """Draw the Gaussian centre heatmap of one sample.

        Args:
            bboxes (:obj:`LiDARInstance3DBoxes`): Ground-truth boxes.
            labels (Tensor): Their labels.

        Returns:
            Tensor: Target of shape (num_classes, Y, X); 1 at the cell of
            every in-range box centre.
        """
        num_y, num_x = self.grid_size
        device = bboxes.tensor.device
        heatmap = bboxes.tensor.new_zeros(self.num_classes, num_y, num_x)
        if len(bboxes) == 0:
            return heatmap
        res_x, res_y = self.bbox_coder.cell_size
        x_min, y_min = self.bbox_coder.point_cloud_range[:2]
        boxes = bboxes.tensor
        for k in range(len(boxes)):
            length = boxes[k, 3] / res_x
            width = boxes[k, 4] / res_y
            if length <= 0 or width <= 0:
                continue
            radius = gaussian_radius((width, length),
                                     min_overlap=self.gaussian_overlap)
            radius = max(self.min_radius, int(radius))
            cx = ((boxes[k, 0] - x_min) / res_x).floor()
            cy = ((boxes[k, 1] - y_min) / res_y).floor()
            if not (0 <= cx < num_x and 0 <= cy < num_y):
                continue
            center = torch.stack([cx, cy]).to(device=device,
                                              dtype=torch.int64)
            draw_heatmap_gaussian(heatmap[labels[k]], center, radius)
        return heatmap

    def get_targets(self, preds: Dict[str, Tensor], index: int,
                    bboxes: LiDARInstance3DBoxes, labels: Tensor) -> tuple:
        """Match the queries of sample ``index`` and build their targets.

        Args:
            preds (dict[str, Tensor]): Output of :meth:`forward`.
            index (int): Sample index in the batch.
            bboxes (:obj:`LiDARInstance3DBoxes`): Ground-truth boxes.
            labels (Tensor): Ground-truth labels.

        Returns:
            tuple[Tensor]: ``labels`` (K,) with ``num_classes`` for
            background, ``code_targets`` (K, 10), ``code_weights`` (K, 10),
            number of matched queries.
        """
        codes = self._codes(preds)[index].detach()
        cls_logits = preds['cls_logits'][index].transpose(0, 1).detach()
        num_queries = codes.shape[0]
        device = codes.device
        boxes = bboxes.to(device)
        pred_boxes = LiDARInstance3DBoxes(
            self.bbox_coder.decode(codes), box_dim=9)
        assign = self.assigner.assign(
            InstanceData(scores=cls_logits, bboxes_3d=pred_boxes),
            InstanceData(labels=labels.to(device), bboxes_3d=boxes))
        pos = torch.nonzero(assign.gt_inds > 0, as_tuple=False).squeeze(1)
        matched = assign.gt_inds[pos] - 1
        label_targets = torch.full((num_queries, ),
                                   self.num_classes,
                                   dtype=torch.long,
                                   device=device)
        code_targets = codes.new_zeros(num_queries, 10)
        code_weights = codes.new_zeros(num_queries, 10)
        if len(pos):
            label_targets[pos] = labels.to(device)[matched]
            code_targets[pos] = self.bbox_coder.encode(
                boxes.tensor[matched]).to(codes.dtype)
            code_weights[pos] = self.code_weights.to(codes.dtype)
        return label_targets, code_targets, code_weights, len(pos)

    @staticmethod
    def labelled_samples(batch_data_samples: List[Det3DDataSample]
                         ) -> List[int]:
        """Indices of the samples whose boxes the loss uses: all but those
        whose metainfo says ``has_det_labels=False``."""
        return samples_with_labels(batch_data_samples, 'has_det_labels')

    def loss(self, feats: Features,
             batch_data_samples: List[Det3DDataSample]) -> Dict[str, Tensor]:
        """Compute the detection losses.

        Args:
            feats (Tensor | Sequence[Tensor]): BEV feature (B, in_channels,
                Y, X) or its levels.
            batch_data_samples (list[:obj:`Det3DDataSample`]): One per
                sample, with ``gt_instances_3d`` unless the metainfo has
                ``has_det_labels=False``.

        Returns:
            dict[str, Tensor]: ``loss_heatmap``, ``loss_cls``, ``loss_bbox``.
        """
        preds = self(feats)
        return self.loss_by_feat(preds, batch_data_samples)

    def loss_by_feat(
            self, preds: Dict[str, Tensor],
            batch_data_samples: List[Det3DDataSample]) -> Dict[str, Tensor]:
        """Compute the detection losses from :meth:`forward` outputs.

        Args:
            preds (dict[str, Tensor]): Output of :meth:`forward`.
            batch_data_samples (list[:obj:`Det3DDataSample`]): Samples.

        Returns:
            dict[str, Tensor]: ``loss_heatmap``, ``loss_cls``, ``loss_bbox``.
        """
        batch_size = preds['dense_heatmap'].shape[0]
        if len(batch_data_samples) != batch_size:
            raise ValueError('batch_data_samples has '
                             f'{len(batch_data_samples)} samples but feats '
                             f'has batch size {batch_size}')
        labelled = self.labelled_samples(batch_data_samples)
        if not labelled:
            zero = sum(v.sum() for v in preds.values()
                       if v.is_floating_point()) * 0
            return dict(loss_heatmap=zero, loss_cls=zero, loss_bbox=zero)

        heatmap_targets, label_targets, code_targets, weights = [], [], [], []
        num_pos = 0
        for i in labelled:
            boxes, labels = self._gt_of(batch_data_samples[i])
            boxes = boxes.to(preds['dense_heatmap'].device)
            heatmap_targets.append(self.get_heatmap_target(boxes, labels))
            lab, tgt, wgt, npos = self.get_targets(preds, i, boxes, labels)
            label_targets.append(lab)
            code_targets.append(tgt)
            weights.append(wgt)
            num_pos += npos
        index = torch.tensor(labelled, device=preds['center'].device)
        heatmap_targets = torch.stack(heatmap_targets)
        pred_heatmap = clip_sigmoid(preds['dense_heatmap'][index])
        loss_heatmap = self.loss_heatmap(
            pred_heatmap,
            heatmap_targets.to(pred_heatmap.dtype),
            avg_factor=max(heatmap_targets.eq(1).float().sum().item(), 1.0))

        cls_logits = preds['cls_logits'][index].transpose(1, 2).reshape(
            -1, self.num_classes)
        avg_factor = max(float(num_pos), 1.0)
        loss_cls = self.loss_cls(
            cls_logits.float(),
            torch.cat(label_targets),
            avg_factor=avg_factor)
        codes = self._codes(preds)[index].reshape(-1, 10)
        loss_bbox = self.loss_bbox(
            codes,
            torch.cat(code_targets),
            torch.cat(weights),
            avg_factor=avg_factor)
        return dict(
            loss_heatmap=loss_heatmap, loss_cls=loss_cls, loss_bbox=loss_bbox)

    # ------------------------------------------------------------------ #
    # inference
    # ------------------------------------------------------------------ #
    def predict(self, feats: Features,
                batch_data_samples: Optional[List[Det3DDataSample]] = None
                ) -> List[InstanceData]:
        """Predict boxes.

        Args:
            feats (Tensor | Sequence[Tensor]): BEV feature (B, in_channels,
                Y, X) or its levels.
            batch_data_samples (list[:obj:`Det3DDataSample`], optional):
                Samples (only their number is checked). Defaults to None.

        Returns:
            list[:obj:`InstanceData`]: Per sample ``bboxes_3d``
            (LiDARInstance3DBoxes, box_dim 9), ``scores_3d``, ``labels_3d``.
        """
        feats = levels_to_tensor(feats, type(self).__name__)
        preds = self(feats)
        if batch_data_samples is not None and \
                len(batch_data_samples) != feats.shape[0]:
            raise ValueError('batch_data_samples has '
                             f'{len(batch_data_samples)} samples but feats '
                             f'has batch size {feats.shape[0]}')
        return self.predict_by_feat(preds)

    def predict_by_feat(self, preds: Dict[str, Tensor]) -> List[InstanceData]:
        """Decode :meth:`forward` outputs into boxes.

        The score of class c for a query is ``sigmoid(cls_logit_c) *
        heatmap_c(peak)``; each query keeps its best class. Queries with a
        score below ``score_threshold`` or a centre outside
        ``post_center_range`` are dropped, then the ``max_num`` best remain.

        Args:
            preds (dict[str, Tensor]): Output of :meth:`forward`.

        Returns:
            list[:obj:`InstanceData`]: Per sample ``bboxes_3d``,
            ``scores_3d``, ``labels_3d``.
        """
        scores = preds['cls_logits'].sigmoid() * preds['query_heatmap_score']
        scores, labels = scores.max(dim=1)  # (B, K)
        boxes = self.bbox_coder.decode(self._codes(preds))  # (B, K, 9)
        cfg = self.test_cfg
        results = []
        for b in range(boxes.shape[0]):
            keep = scores[b] >= cfg['score_threshold']
            if cfg['post_center_range'] is not None:
                rng = boxes.new_tensor(cfg['post_center_range'])
                centre = boxes[b, :, :3]
                keep &= ((centre >= rng[:3]) & (centre <= rng[3:])).all(1)
            idx = torch.nonzero(keep, as_tuple=False).squeeze(1)
            order = scores[b, idx].argsort(descending=True)
            idx = idx[order[:cfg['max_num']]]
            result = InstanceData()
            result.bboxes_3d = LiDARInstance3DBoxes(
                boxes[b, idx].detach(), box_dim=9)
            result.scores_3d = scores[b, idx].detach()
            result.labels_3d = labels[b, idx].detach()
            results.append(result)
        return results
