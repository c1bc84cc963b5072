"""Cityscapes-3D multi-task metric: 3D detection (DS), mIoU, depth, Delta_T."""
import math
import os
import os.path as osp
import tempfile
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from cityscapesscripts.helpers.labels import trainId2label
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from mmdet3d.registry import METRICS
from .cityscapes3d_box_eval import (OFFICIAL_3D_LABELS, run_box3d_evaluation,
                                    write_prediction_files)
from .multi_task_metric import delta_mtl

__all__ = ['Cityscapes3DMetric']

#: 3D detection classes of Cityscapes-3D, in label-id order.
CITYSCAPES3D_CLASSES = ('car', 'truck', 'bus', 'train', 'motorcycle',
                        'bicycle', 'caravan', 'trailer')
#: Names of the 19 Cityscapes train ids.
CITYSCAPES_TRAIN_NAMES = tuple(trainId2label[i].name for i in range(19))
# the metric of each task entering Delta_T by default, and error metrics
TASK_KEYS = dict(det='det/DS', seg='seg/mIoU', depth='depth/RMSE')
LOWER_IS_BETTER = ('RMSE', 'AbsRel')
# short baseline names and their task
SHORT_KEYS = dict(
    DS='det',
    AP='det',
    Center_Dist='det',
    Size_Similarity='det',
    OS_Yaw='det',
    OS_Pitch_Roll='det',
    mIoU='seg',
    RMSE='depth',
    AbsRel='depth',
    delta1='depth')


def _get(sample, key: str):
    """``key`` of a data sample or data element given as dict or object."""
    if sample is None:
        return None
    if isinstance(sample, dict):
        return sample.get(key)
    return getattr(sample, key, None) if key in sample else None


def _numpy(value) -> np.ndarray:
    """Numpy copy of a tensor / box object / array, detached from graphs."""
    if hasattr(value, 'tensor'):
        value = value.tensor
    if hasattr(value, 'detach'):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


@METRICS.register_module()
class Cityscapes3DMetric(BaseMetric):
    """One evaluator for mono 3D detection, semantic segmentation and depth
    on Cityscapes-3D format data, with Delta_T.

    Each task is evaluated when the model outputs its prediction
    (``pred_instances_3d``, ``pred_sem_seg``, ``pred_depth_map``; see the
    data contract in ``mtl_fusion/datasets/cityscapes3d_geometry.py``);
    tasks without predictions (single-task models) are skipped with a log
    line. Reported keys (fractions, not percent):

    - ``det/DS``: the official Cityscapes-3D mean Detection Score, computed
      by cityscapesScripts' ``Box3dEvaluator``: predictions are written as
      Cityscapes-3D json files (the 3D box through
      :func:`camera_boxes_to_cs_objects`, the modal 2D box from the
      prediction's ``bboxes`` rescaled to the original image, else the
      projection of the 3D box; the evaluator itself recomputes the amodal
      box from the 3D box) and evaluated against the GT files
      ``<gt_bbox3d_dir>/<city>/<stem>_gtBbox3d.json`` of exactly the
      evaluated images (linked into a temporary folder). Also ``det/AP``,
      the mean TP scores ``det/Center_Dist``, ``det/Size_Similarity``,
      ``det/OS_Yaw``, ``det/OS_Pitch_Roll`` and per class with GT
      ``det/DS_<cls>``, ``det/AP_<cls>``, ... (means over the classes with
      GT, as the official script). Note that the evaluator scores a TP
      criterion of a class 0 when all its matches fall in one distance bin.
    - ``seg/mIoU`` and ``seg/IoU_<name>``: from a confusion matrix over all
      pixels of the split (GT ``ignore_index`` left out, predictions outside
      ``0..num_seg_classes-1`` count as wrong). A class with neither GT nor
      predicted pixels is reported as NaN and left out of the mean (logged).
    - ``depth/RMSE``, ``depth/AbsRel``, ``depth/delta1`` (share of
      ``max(p / g, g / p) < 1.25``): per pixel over all valid GT pixels of
      the split (``g > 0``, finite, within ``depth_range``), not averaged
      per image. Predictions are not clipped.
    - ``Delta_T`` (TAG Eq. 6, percent, higher is better):
      ``100 / |T| * sum_t (-1)^{l_t} (M_t - M_t^single) / M_t^single``
      over the ``baselines`` whose task was evaluated; equals
      ``-delta_mtl(...)`` of :mod:`multi_task_metric`.

    GT segmentation and depth are read from the model output
    (``gt_sem_seg.sem_seg``, ``gt_depth_map.data``), else from the batch's
    data samples; they must have the prediction's (network input) size.

    Args:
        data_root (str, optional): Cityscapes-3D root; the GT boxes are in
            ``<data_root>/gtBbox3d/<split>``. Defaults to None.
        split (str): Split folder name. Defaults to 'val'.
        gt_bbox3d_dir (str, optional): GT box folder, overriding
            ``data_root`` / ``split``. Defaults to None.
        det_classes (Sequence[str], optional): Class name of each 3D label
            id. Defaults to None: ``dataset_meta['classes']`` when set, else
            the eight Cityscapes-3D classes.
        det_eval_labels (Sequence[str]): Classes evaluated by the DS.
            Defaults to the official six (car, truck, bus, train,
            motorcycle, bicycle).
        det_min_iou (float): 2D IoU to match. Defaults to 0.7.
        det_max_depth (int): Largest BEV distance (m) of the
            distance-dependent scores. Defaults to 100.
        det_step_size (int): Distance bin (m). Defaults to 5.
        det_matching (str): 'amodal' or 'modal' 2D boxes for matching.
            Defaults to 'amodal'.
        det_working_confidence (float): Score threshold of the TP criteria,
            -1 for the per-class best. Defaults to -1.0.
        det_num_conf (int): Score thresholds of the AP. Defaults to 50.
        pred_dir (str, optional): Keep the prediction json files there.
            Defaults to None (a temporary folder).
        num_seg_classes (int): Number of train ids. Defaults to 19.
        seg_classes (Sequence[int], optional): Train ids in the mIoU.
            Defaults to None (all).
        seg_class_names (Sequence[str], optional): Name of each train id.
            Defaults to None: ``dataset_meta['seg_classes']`` when it has
            ``num_seg_classes`` names, else the Cityscapes names for 19
            classes, else ``class<i>``.
        ignore_index (int): GT value left out. Defaults to 255.
        depth_range (tuple[float, float], optional): Valid GT depths
            ``[min, max]`` in metres (e.g. ``(0.1, 80.)``). Defaults to None
            (every ``g > 0``).
        baselines (dict, optional): Single-task values for Delta_T, keyed by
            a reported key, a unique suffix after ``/`` (``'DS'``,
            ``'mIoU'``, ``'RMSE'``, ``'AbsRel'``) or a task alias
            (``'det'``, ``'seg'``, ``'depth'`` = DS, mIoU, RMSE), in the
            reported units. Defaults to None (no Delta_T).
        collect_device (str): Device for cross-rank collection. Defaults to
            'cpu'.
        prefix (str, optional): Metric-name prefix. Defaults to None.
    """

    default_prefix: Optional[str] = None

    def __init__(self,
                 data_root: Optional[str] = None,
                 split: str = 'val',
                 gt_bbox3d_dir: Optional[str] = None,
                 det_classes: Optional[Sequence[str]] = None,
                 det_eval_labels: Sequence[str] = OFFICIAL_3D_LABELS,
                 det_min_iou: float = 0.7,
                 det_max_depth: int = 100,
                 det_step_size: int = 5,
                 det_matching: str = 'amodal',
                 det_working_confidence: float = -1.0,
                 det_num_conf: int = 50,
                 pred_dir: Optional[str] = None,
                 num_seg_classes: int = 19,
                 seg_classes: Optional[Sequence[int]] = None,
                 seg_class_names: Optional[Sequence[str]] = None,
                 ignore_index: int = 255,
                 depth_range: Optional[Tuple[float, float]] = None,
                 baselines: Optional[Dict[str, float]] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if gt_bbox3d_dir is None and data_root is not None:
            gt_bbox3d_dir = osp.join(data_root, 'gtBbox3d', split)
        self.gt_bbox3d_dir = gt_bbox3d_dir
        self._det_classes = tuple(det_classes) if det_classes else None
        self.det_eval_labels = tuple(det_eval_labels)
        if det_matching not in ('amodal', 'modal'):
            raise ValueError("Cityscapes3DMetric: det_matching must be "
                             f"'amodal' or 'modal', got {det_matching!r}")
        self.det_eval_cfg = dict(
            labels=self.det_eval_labels,
            min_iou_to_match=det_min_iou,
            max_depth=det_max_depth,
            step_size=det_step_size,
            matching=det_matching,
            working_confidence=det_working_confidence,
            num_conf=det_num_conf)
        self.pred_dir = pred_dir
        self.num_seg_classes = int(num_seg_classes)
        self.seg_classes = (
            list(range(self.num_seg_classes))
            if seg_classes is None else [int(c) for c in seg_classes])
        bad = [c for c in self.seg_classes if not 0 <= c < num_seg_classes]
        if bad:
            raise ValueError(f'Cityscapes3DMetric: seg_classes {bad} outside '
                             f'0..{num_seg_classes - 1}')
        if seg_class_names is not None and \
                len(seg_class_names) != num_seg_classes:
            raise ValueError(f'Cityscapes3DMetric: {len(seg_class_names)} '
                             f'seg_class_names for {num_seg_classes} classes')
        self._seg_class_names = (
            tuple(seg_class_names) if seg_class_names is not None else None)
        self.ignore_index = int(ignore_index)
        if depth_range is not None and not depth_range[0] < depth_range[1]:
            raise ValueError(f'Cityscapes3DMetric: depth_range {depth_range} '
                             'must be (min, max) with min < max')
        self.depth_range = depth_range
        self.baselines = dict(baselines or {})

    @property
    def det_classes(self) -> Tuple[str, ...]:
        """Class name of each 3D label id."""
        if self._det_classes is not None:
            return self._det_classes
        meta = self.dataset_meta or {}
        if meta.get('classes'):
            return tuple(meta['classes'])
        return CITYSCAPES3D_CLASSES

    @property
    def seg_class_names(self) -> Tuple[str, ...]:
        """Name of each train id."""
        if self._seg_class_names is not None:
            return self._seg_class_names
        names = (self.dataset_meta or {}).get('seg_classes')
        if names and len(names) == self.num_seg_classes:
            return tuple(names)
        if self.num_seg_classes == 19:
            return CITYSCAPES_TRAIN_NAMES
        return tuple(f'class{i}' for i in range(self.num_seg_classes))

    # ------------------------------------------------------------- process
    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Keep per image what :meth:`compute_metrics` needs (numpy only).

        Args:
            data_batch (dict): The batch from the dataloader (its
                ``data_samples`` are the GT fallback).
            data_samples (Sequence[dict]): Model outputs, as dicts or data
                samples.
        """
        batch_samples = (
            _get(data_batch, 'data_samples') if data_batch else None) or []
        for i, sample in enumerate(data_samples):
            ref = batch_samples[i] if i < len(batch_samples) else None
            result = {}
            pred = _get(sample, 'pred_instances_3d')
            if pred is not None:
                result['det'] = self._det_result(sample, pred)
            pred_seg = _get(sample, 'pred_sem_seg')
            if pred_seg is not None:
                result['seg'] = self._seg_confusion(sample, ref, pred_seg)
            pred_depth = _get(sample, 'pred_depth_map')
            if pred_depth is not None:
                result['depth'] = self._depth_sums(sample, ref, pred_depth)
            self.results.append(result)

    @staticmethod
    def _stem(sample) -> str:
        """Cityscapes image stem of a sample (``<city>_<seq>_<frame>``)."""
        img_path = _get(sample, 'img_path')
        if isinstance(img_path, (list, tuple)):
            img_path = img_path[0] if img_path else None
        if img_path:
            name = osp.basename(str(img_path))
            return name.rsplit('_leftImg8bit', 1)[0] if (
                '_leftImg8bit' in name) else osp.splitext(name)[0]
        idx = _get(sample, 'sample_idx')
        if isinstance(idx, str) and idx:
            return idx
        raise KeyError('Cityscapes3DMetric: a detection sample has neither '
                       "'img_path' nor a string 'sample_idx' (the image "
                       'stem) in its metainfo')

    def _det_result(self, sample, pred) -> dict:
        stem = self._stem(sample)
        fields = {}
        for key in ('bboxes_3d', 'scores_3d', 'labels_3d', 'pitch', 'roll'):
            value = _get(pred, key)
            if value is None:
                raise KeyError(f'Cityscapes3DMetric: pred_instances_3d of '
                               f'{stem} has no {key!r}')
            fields[key] = _numpy(value)
        boxes = fields['bboxes_3d'].astype(np.float64).reshape(-1, 7)
        bboxes = _get(pred, 'bboxes')
        if bboxes is not None:
            bboxes = _numpy(bboxes).astype(np.float64).reshape(-1, 4)
            scale = _get(sample, 'scale_factor')
            if scale is not None:
                scale = np.asarray(scale, dtype=np.float64).reshape(-1)[:2]
                bboxes = bboxes / np.tile(scale, 2)
        n = len(boxes)
        for key in ('scores_3d', 'labels_3d', 'pitch', 'roll'):
            if fields[key].reshape(-1).shape[0] != n:
                raise ValueError(f'Cityscapes3DMetric: {stem}: {n} boxes '
                                 f'but {fields[key].size} {key}')
        return dict(
            stem=stem,
            bboxes_3d=boxes,
            pitch=fields['pitch'].astype(np.float64).reshape(-1),
            roll=fields['roll'].astype(np.float64).reshape(-1),
            scores=fields['scores_3d'].astype(np.float64).reshape(-1),
            labels=fields['labels_3d'].astype(np.int64).reshape(-1),
            bboxes=bboxes)

    @staticmethod
    def _gt_map(sample, ref, key: str, field: str, what: str) -> np.ndarray:
        gt = _get(sample, key)
        if gt is None:
            gt = _get(ref, key)
        value = _get(gt, field)
        if value is None:
            raise KeyError(f'Cityscapes3DMetric: {what} predicted but no '
                           f'{key}.{field} in the sample (add its loading '
                           'transform to the test pipeline and pack it)')
        return _numpy(value)

    def _seg_confusion(self, sample, ref, pred_seg) -> np.ndarray:
        pred = _numpy(_get(pred_seg, 'sem_seg')).astype(np.int64)
        gt = self._gt_map(sample, ref, 'gt_sem_seg', 'sem_seg',
                          'segmentation').astype(np.int64)
        pred, gt = pred.reshape(pred.shape[-2:]), gt.reshape(gt.shape[-2:])
        if pred.shape != gt.shape:
            raise ValueError(f'Cityscapes3DMetric: pred_sem_seg {pred.shape} '
                             f'and gt_sem_seg {gt.shape} differ in size')
        num = self.num_seg_classes
        valid = gt != self.ignore_index
        bad_gt = valid & ((gt < 0) | (gt >= num))
        if bad_gt.any():
            raise ValueError('Cityscapes3DMetric: gt_sem_seg values '
                             f'{np.unique(gt[bad_gt]).tolist()} are neither '
                             f'train ids 0..{num - 1} nor {self.ignore_index}')
        # column ``num`` collects predictions outside 0..num-1
        p = np.where((pred >= 0) & (pred < num), pred, num)[valid]
        return np.bincount(
            gt[valid] * (num + 1) + p,
            minlength=num * (num + 1)).reshape(num, num + 1)

    def _depth_sums(self, sample, ref, pred_depth) -> np.ndarray:
        pred = _numpy(_get(pred_depth, 'data')).astype(np.float64)
        gt = self._gt_map(sample, ref, 'gt_depth_map', 'data',
                          'depth').astype(np.float64)
        pred, gt = pred.reshape(pred.shape[-2:]), gt.reshape(gt.shape[-2:])
        if pred.shape != gt.shape:
            raise ValueError(f'Cityscapes3DMetric: pred_depth_map {pred.shape}'
                             f' and gt_depth_map {gt.shape} differ in size')
        valid = np.isfinite(gt) & (gt > 0)
        if self.depth_range is not None:
            valid &= (gt >= self.depth_range[0]) & (gt <= self.depth_range[1])
        g, p = gt[valid], pred[valid]
        with np.errstate(divide='ignore', invalid='ignore'):
            ratio = np.maximum(p / g, g / p)
        return np.array([
            valid.sum(), ((p - g)**2).sum(), (np.abs(p - g) / g).sum(),
            (ratio < 1.25).sum()
        ], dtype=np.float64)

    # ------------------------------------------------------------- compute
    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Evaluate the tasks that have predictions, then Delta_T.

        Args:
            results (list[dict]): The per-image results of all ranks.

        Returns:
            dict[str, float]: The metrics (see the class docstring).
        """
        logger = MMLogger.get_current_instance()
        metrics: Dict[str, float] = {}
        for task, fn in (('det', self._compute_det),
                         ('seg', self._compute_seg),
                         ('depth', self._compute_depth)):
            parts = [r[task] for r in results if task in r]
            if not parts:
                logger.info(f'Cityscapes3DMetric: no {task} predictions, '
                            f'{task} is not evaluated')
                continue
            if len(parts) != len(results):
                raise ValueError(
                    f'Cityscapes3DMetric: {len(results) - len(parts)} of '
                    f'{len(results)} samples lack the {task} prediction')
            metrics.update(fn(parts, logger))
        if self.baselines:
            delta = self._delta_t(metrics, logger)
            if delta is not None:
                metrics['Delta_T'] = delta
        return metrics

    def _compute_det(self, parts: List[dict], logger) -> Dict[str, float]:
        if self.gt_bbox3d_dir is None:
            raise ValueError('Cityscapes3DMetric: 3D boxes predicted but no '
                             'data_root / gt_bbox3d_dir for the GT files')
        with tempfile.TemporaryDirectory() as tmp:
            pred_dir = self.pred_dir or osp.join(tmp, 'pred')
            os.makedirs(pred_dir, exist_ok=True)
            gt_subset = osp.join(tmp, 'gt')
            write_prediction_files(parts, self.det_classes,
                                   self.gt_bbox3d_dir, pred_dir, gt_subset)
            scores = run_box3d_evaluation(
                gt_subset, pred_dir, logger=logger, **self.det_eval_cfg)
        logger.info(f'Cityscapes3DMetric: DS {scores["DS"]:.4f} on '
                    f'{len(parts)} images')
        return {f'det/{k}': v for k, v in scores.items()}

    def _compute_seg(self, parts: List[np.ndarray],
                     logger) -> Dict[str, float]:
        conf = np.sum(parts, axis=0)
        num = self.num_seg_classes
        tp = np.diag(conf[:, :num]).astype(np.float64)
        gt_count = conf.sum(axis=1).astype(np.float64)
        pred_count = conf[:, :num].sum(axis=0).astype(np.float64)
        union = gt_count + pred_count - tp
        out, ious, absent = {}, [], []
        for c in self.seg_classes:
            name = self.seg_class_names[c]
            if union[c] == 0:
                absent.append(name)
                out[f'seg/IoU_{name}'] = float('nan')
                continue
            out[f'seg/IoU_{name}'] = tp[c] / union[c]
            ious.append(tp[c] / union[c])
        if absent:
            logger.info('Cityscapes3DMetric: classes absent from GT and '
                        f'prediction (NaN, left out of the mIoU): {absent}')
        out['seg/mIoU'] = float(np.mean(ious)) if ious else float('nan')
        return out

    def _compute_depth(self, parts: List[np.ndarray],
                       logger) -> Dict[str, float]:
        n, sq, rel, good = np.sum(parts, axis=0)
        if n == 0:
            logger.warning('Cityscapes3DMetric: no valid GT depth pixel')
            return {
                f'depth/{k}': float('nan')
                for k in ('RMSE', 'AbsRel', 'delta1')
            }
        return {
            'depth/RMSE': math.sqrt(sq / n),
            'depth/AbsRel': rel / n,
            'depth/delta1': good / n
        }

    def _delta_t(self, metrics: Dict[str, float], logger) -> Optional[float]:
        current, base, lower = {}, {}, []
        for name, value in self.baselines.items():
            key = self._resolve(name, metrics)
            if key is None:
                logger.info(f'Cityscapes3DMetric: the task of baseline '
                            f'{name!r} is not evaluated; left out of '
                            'Delta_T')
                continue
            current[key], base[key] = float(metrics[key]), float(value)
            if key.rsplit('/', 1)[-1] in LOWER_IS_BETTER:
                lower.append(key)
        if not current:
            return None
        if any(math.isnan(v) for v in current.values()):
            return float('nan')
        return -delta_mtl(current, base, tuple(lower))

    @staticmethod
    def _resolve(name: str, metrics: Dict[str, float]) -> Optional[str]:
        """Reported key of a baseline name, None when its task is absent."""
        key = TASK_KEYS.get(name, name)
        if '/' not in key:
            if key not in SHORT_KEYS:
                raise KeyError(
                    f'Cityscapes3DMetric: unknown baseline {name!r}; use a '
                    f'task ({sorted(TASK_KEYS)}), one of {sorted(SHORT_KEYS)}'
                    " or a full reported key such as 'seg/IoU_road'")
            key = f'{SHORT_KEYS[key]}/{key}'
        task = key.split('/', 1)[0]
        if not any(k.startswith(task + '/') for k in metrics):
            return None
        if key not in metrics:
            raise KeyError(f'Cityscapes3DMetric: baseline {name!r} -> {key!r}'
                           f' is not reported; reported: {sorted(metrics)}')
        return key
