"""nuScenes detection metric that also scores an empty prediction set."""
import os.path as osp
from typing import Dict, List, Optional

import mmengine
from mmengine.logging import MMLogger

from mmdet3d.evaluation.metrics import NuScenesMetric
from mmdet3d.registry import METRICS

__all__ = ['EmptySafeNuScenesMetric', 'empty_prediction_summary']


def empty_prediction_summary(eval_cfg) -> dict:
    """The devkit's metrics summary of a submission without any box.

    nuscenes-devkit's ``NuScenesEval`` raises ``Invalid box type: None``
    when no sample has a box (``filter_eval_boxes`` looks for a box to read
    the class field from). An empty submission is a valid one, though: an
    untrained or collapsed detector produces it. Its metrics follow from
    the devkit's own functions applied to
    ``DetectionMetricData.no_predictions()``: every AP is 0, every true
    positive error is 1 (no class reaches the minimum recall), the errors
    the devkit leaves out (``traffic_cone`` attr/vel/orient, ``barrier``
    attr/vel) are NaN, so mAP = NDS = 0.

    Args:
        eval_cfg (DetectionConfig): The devkit detection config.

    Returns:
        dict: The serialized ``DetectionMetrics``, as the devkit writes it to
        ``metrics_summary.json``.
    """
    import numpy as np
    from nuscenes.eval.detection.algo import calc_ap, calc_tp
    from nuscenes.eval.detection.constants import TP_METRICS
    from nuscenes.eval.detection.data_classes import (DetectionMetricData,
                                                      DetectionMetrics)

    no_pred = DetectionMetricData.no_predictions()
    skipped = dict(
        traffic_cone=('attr_err', 'vel_err', 'orient_err'),
        barrier=('attr_err', 'vel_err'))
    metrics = DetectionMetrics(eval_cfg)
    for name in eval_cfg.class_names:
        for dist_th in eval_cfg.dist_ths:
            metrics.add_label_ap(
                name, dist_th,
                calc_ap(no_pred, eval_cfg.min_recall, eval_cfg.min_precision))
        for err in TP_METRICS:
            value = (
                np.nan if err in skipped.get(name, ()) else calc_tp(
                    no_pred, eval_cfg.min_recall, err))
            metrics.add_label_tp(name, err, value)
    metrics.add_runtime(0.0)
    return metrics.serialize()


def _holds_a_box(result_path: str, chunk: int = 1 << 20) -> bool:
    """Whether a nuScenes result json holds at least one box.

    Every box carries a ``"sample_token"`` key and nothing else in the file
    does, so the bytes are scanned for it, stopping at the first one: the
    devkit parses the file afterwards, and a full submission (hundreds of
    MB on nuScenes val) is not parsed twice.
    """
    needle = b'"sample_token"'
    tail = b''
    with open(result_path, 'rb') as f:
        while True:
            block = f.read(chunk)
            if not block:
                return False
            window = tail + block
            if needle in window:
                return True
            tail = window[-(len(needle) - 1):]


@METRICS.register_module()
class EmptySafeNuScenesMetric(NuScenesMetric):
    """``NuScenesMetric`` that reports mAP = NDS = 0 for an empty submission.

    Everything else is mmdet3d's ``NuScenesMetric``: the same result files,
    the devkit evaluation, the same metric keys. Only when the formatted
    result file holds no box at all (the devkit would raise ``Invalid box
    type: None``) the metrics summary is built with
    :func:`empty_prediction_summary`, written to the usual
    ``metrics_summary.json`` beside the results, and a warning names the
    result file.
    """

    def _evaluate_single(
            self,
            result_path: str,
            classes: Optional[List[str]] = None,
            result_name: str = 'pred_instances_3d') -> Dict[str, float]:
        """Evaluate one result file; see the class docstring.

        Args:
            result_path (str): Path of the nuScenes result json.
            classes (list[str], optional): Class names. Defaults to None.
            result_name (str): Result name in the metric prefix. Defaults to
                'pred_instances_3d'.

        Returns:
            dict[str, float]: The metrics, keyed like ``NuScenesMetric``'s.
        """
        if _holds_a_box(result_path):
            return super()._evaluate_single(
                result_path, classes=classes, result_name=result_name)
        submission = mmengine.load(result_path)  # small: no box in it
        MMLogger.get_current_instance().warning(
            f'{result_path} holds no predicted box in '
            f'{len(submission["results"])} samples: mAP and NDS are 0')
        summary = empty_prediction_summary(self.eval_detection_configs)
        summary['meta'] = submission.get('meta', {})
        mmengine.dump(summary,
                      osp.join(osp.dirname(result_path),
                               'metrics_summary.json'))
        return self.summary_to_metrics(summary, classes, result_name)

    def summary_to_metrics(self, summary: dict, classes: List[str],
                           result_name: str) -> Dict[str, float]:
        """Flatten a devkit metrics summary into ``NuScenesMetric``'s keys.

        Args:
            summary (dict): A ``metrics_summary.json`` content.
            classes (list[str]): Class names to report.
            result_name (str): Result name in the metric prefix.

        Returns:
            dict[str, float]: ``<result_name>_NuScenes/<key>`` values,
            rounded to 4 decimals like ``NuScenesMetric``'s.
        """
        prefix = f'{result_name}_NuScenes'
        out = {}
        for name in classes:
            for dist, ap in summary['label_aps'][name].items():
                out[f'{prefix}/{name}_AP_dist_{dist}'] = round(float(ap), 4)
            for err, value in summary['label_tp_errors'][name].items():
                out[f'{prefix}/{name}_{err}'] = round(float(value), 4)
        for err, value in summary['tp_errors'].items():
            out[f'{prefix}/{self.ErrNameMapping[err]}'] = round(
                float(value), 4)
        out[f'{prefix}/NDS'] = summary['nd_score']
        out[f'{prefix}/mAP'] = summary['mean_ap']
        return out
