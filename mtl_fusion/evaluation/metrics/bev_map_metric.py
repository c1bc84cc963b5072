"""BEV map-segmentation IoU, BEVFusion protocol."""
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from mmdet3d.registry import METRICS

__all__ = ['BEVMapMetric']

DEFAULT_MAP_CLASSES = ('drivable_area', 'ped_crossing', 'walkway',
                       'stop_line', 'carpark_area', 'divider')
DEFAULT_THRESHOLDS = tuple(round(0.35 + 0.05 * k, 2) for k in range(7))


def _get(sample, key):
    """Read ``key`` from a data sample given as dict or data element."""
    if isinstance(sample, dict):
        return sample.get(key)
    return getattr(sample, key, None) if key in sample else None


@METRICS.register_module()
class BEVMapMetric(BaseMetric):
    """Per-class IoU of thresholded BEV map predictions, max over
    thresholds.

    For every class ``c`` and threshold ``t`` the counts
    ``TP = |P & G|``, ``FP = |P & ~G|``, ``FN = |~P & G|`` with
    ``P = pred_bev_masks[c] > t`` and ``G = gt_bev_masks[c]`` are summed over
    the whole split; ``IoU(c, t) = TP / (TP + FP + FN)``. Reported:

    * ``map/<cls>/iou@<t>`` for every threshold, ``map/<cls>/iou@max`` =
      max over thresholds;
    * ``map/mean/iou@max`` = mean over classes of ``iou@max``.

    A class that has neither GT nor predicted pixels anywhere in the split
    has an undefined IoU: it is reported as NaN and left out of the mean
    (with a warning).

    Samples without ``gt_bev_masks`` (no map labels, see
    ``MultiTaskNuScenesDataset`` label settings) are skipped and counted in
    the log. The GT is read from the model output, else from the batch's
    data samples. Predictions ``pred_bev_masks`` are float (C, Y, X)
    sigmoid probabilities in the (C, Y, X) layout of the GT.

    Args:
        classes (Sequence[str]): Map class names, one per channel. Defaults
            to the six nuScenes map classes.
        thresholds (Sequence[float]): Probability thresholds. Defaults to
            0.35, 0.40, ..., 0.65.
        collect_device (str): Device for cross-rank collection. Defaults to
            'cpu'.
        prefix (str, optional): Metric-name prefix. Defaults to None (keys
            start with ``map/``).
    """

    default_prefix: Optional[str] = None

    def __init__(self,
                 classes: Sequence[str] = DEFAULT_MAP_CLASSES,
                 thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if not classes or not thresholds:
            raise ValueError('BEVMapMetric: classes and thresholds must not '
                             'be empty')
        self.classes = tuple(classes)
        self.thresholds = tuple(float(t) for t in thresholds)

    def process(self, data_batch: dict, data_samples: Sequence) -> None:
        """Accumulate TP/FP/FN counts of one batch.

        Args:
            data_batch (dict): The batch from the dataloader.
            data_samples (Sequence): Model outputs (dicts or data samples).
        """
        batch_samples = (data_batch or {}).get('data_samples') or []
        thr = torch.tensor(self.thresholds).view(-1, 1, 1, 1)
        for k, sample in enumerate(data_samples):
            gt = _get(sample, 'gt_bev_masks')
            if gt is None and k < len(batch_samples):
                gt = _get(batch_samples[k], 'gt_bev_masks')
            if gt is None:
                self.results.append(dict(skipped=1))
                continue
            pred = _get(sample, 'pred_bev_masks')
            sample_id = _get(sample, 'sample_idx')
            if pred is None:
                raise KeyError(
                    f'BEVMapMetric: sample {sample_id} has gt_bev_masks but '
                    'no pred_bev_masks in the model output')
            pred = torch.as_tensor(pred).detach().float().cpu()
            gt = torch.as_tensor(gt).detach().cpu().bool()
            if pred.shape != gt.shape or pred.dim() != 3 or \
                    pred.shape[0] != len(self.classes):
                raise ValueError(
                    f'BEVMapMetric: sample {sample_id}: pred_bev_masks '
                    f'{tuple(pred.shape)} and gt_bev_masks '
                    f'{tuple(gt.shape)} must both be (C, Y, X) with '
                    f'C = {len(self.classes)} classes {self.classes}')
            positive = pred.unsqueeze(0) > thr  # (T, C, Y, X)
            tp = (positive & gt).sum(dim=(2, 3))
            fp = (positive & ~gt).sum(dim=(2, 3))
            fn = (~positive & gt).sum(dim=(2, 3))
            self.results.append(
                dict(
                    tp=tp.T.numpy().astype(np.int64),
                    fp=fp.T.numpy().astype(np.int64),
                    fn=fn.T.numpy().astype(np.int64)))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """IoU per class/threshold from the summed counts.

        Args:
            results (list[dict]): Per-sample counts from :meth:`process`.

        Returns:
            dict[str, float]: The ``map/...`` metrics.
        """
        logger = MMLogger.get_current_instance()
        counted = [r for r in results if 'tp' in r]
        skipped = len(results) - len(counted)
        if skipped:
            logger.info(f'BEVMapMetric: {skipped} of {len(results)} samples '
                        'have no map labels and were skipped')
        if not counted:
            raise ValueError(
                'BEVMapMetric: no sample carried gt_bev_masks; nothing to '
                'evaluate (is LoadBEVMapMasks in the test pipeline and '
                "'gt_masks_bev' in the packing keys?)")
        shape = (len(self.classes), len(self.thresholds))
        tp, fp, fn = (np.zeros(shape, dtype=np.int64) for _ in range(3))
        for r in counted:
            tp += r['tp']
            fp += r['fp']
            fn += r['fn']
        union = tp + fp + fn
        with np.errstate(invalid='ignore', divide='ignore'):
            iou = np.where(union > 0, tp / np.maximum(union, 1), np.nan)
        metrics: Dict[str, float] = {}
        best = []
        for c, name in enumerate(self.classes):
            for t, thr in enumerate(self.thresholds):
                metrics[f'map/{name}/iou@{thr:.2f}'] = float(iou[c, t])
            if np.all(np.isnan(iou[c])):
                logger.warning(f'BEVMapMetric: class {name} has no GT and no '
                               'predicted pixels; IoU undefined, left out '
                               'of the mean')
                best.append(np.nan)
            else:
                best.append(float(np.nanmax(iou[c])))
            metrics[f'map/{name}/iou@max'] = best[-1]
        metrics['map/mean/iou@max'] = float(np.nanmean(best)) if not all(
            np.isnan(best)) else float('nan')
        return metrics
