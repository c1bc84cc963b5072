"""Detection + BEV map metrics in one evaluator, with Delta_MTL."""
import math
from typing import Dict, List, Optional, Sequence

from mmengine.evaluator import BaseMetric

from mmdet3d.registry import METRICS

__all__ = ['MultiTaskMetric', 'delta_mtl']

# aliases accepted as baseline names
DEFAULT_TASK_KEYS = dict(det='mAP', seg='map/mean/iou@max')
# metrics for which a lower value is better (their term changes sign)
LOWER_IS_BETTER = ('mATE', 'mASE', 'mAOE', 'mAVE', 'mAAE')


def delta_mtl(current: Dict[str, float], baselines: Dict[str, float],
              lower_is_better: Sequence[str] = ()) -> float:
    """Delta_MTL of FULLER (Eq. 9), in percent.

    ``Delta_MTL = (-1)^l / T * sum_i s_i (M_m,i - M_b,i) / M_b,i * 100`` with
    ``l = 1`` (so lower is better: a multi-task model that loses accuracy
    w.r.t. its single-task baselines gets a positive value), ``T`` the
    number of metrics and ``s_i = -1`` for metrics where lower is better
    (``+1`` otherwise).

    Args:
        current (dict[str, float]): Multi-task values, keyed like
            ``baselines``.
        baselines (dict[str, float]): Single-task values.
        lower_is_better (Sequence[str]): Keys whose metric is an error.
            Defaults to ().

    Returns:
        float: Delta_MTL in percent.
    """
    if not baselines:
        raise ValueError('delta_mtl: no baselines given')
    total = 0.0
    for key, base in baselines.items():
        if base == 0:
            raise ValueError(f'delta_mtl: baseline of {key!r} is 0')
        sign = -1.0 if key in lower_is_better else 1.0
        total += sign * (current[key] - base) / base
    return -100.0 * total / len(baselines)


@METRICS.register_module()
class MultiTaskMetric(BaseMetric):
    """Evaluate detection and BEV map segmentation together.

    Wraps a detection metric config (e.g. ``NuScenesMetric``) and a map
    metric config (``BEVMapMetric``); either may be None for single-task
    models. Every batch is forwarded to both; each sub-metric collects its
    own results across ranks; the returned dict holds both metric sets under
    their own names (e.g. ``NuScenes metric/pred_instances_3d_NuScenes/mAP``,
    ``map/mean/iou@max``).

    ``Delta_MTL`` (percent, lower is better, see :func:`delta_mtl`) is added
    only when ``baselines`` is given. Its keys name metrics of the sub
    metrics: the full reported key, a unique suffix after a ``/`` (e.g.
    ``'mAP'``, ``'NDS'``), or the aliases ``'det'`` (= ``'mAP'``) and
    ``'seg'`` (= ``'map/mean/iou@max'``). The paper leaves the detection
    metric open; the default choice is mAP for detection and mean IoU for
    segmentation. Baseline values must be in the reported units (fractions,
    e.g. ``dict(det=0.621, seg=0.623)``). Error metrics (mATE, mASE, mAOE,
    mAVE, mAAE) enter with the opposite sign.

    Args:
        det_metric (dict, optional): Config of the detection metric.
            Defaults to None.
        seg_metric (dict, optional): Config of the map metric. Defaults to
            None.
        baselines (dict, optional): Single-task baseline values. Defaults to
            None (no Delta_MTL).
        collect_device (str): Unused by the wrapper itself (the sub-metrics
            collect). Defaults to 'cpu'.
        prefix (str, optional): Unused; sub-metrics keep their prefixes.
            Defaults to None.
    """

    def __init__(self,
                 det_metric: Optional[dict] = None,
                 seg_metric: Optional[dict] = None,
                 baselines: Optional[Dict[str, float]] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if det_metric is None and seg_metric is None:
            raise ValueError('MultiTaskMetric: give det_metric, seg_metric '
                             'or both')
        self.det_metric = (
            METRICS.build(det_metric) if isinstance(det_metric, dict) else
            det_metric)
        self.seg_metric = (
            METRICS.build(seg_metric) if isinstance(seg_metric, dict) else
            seg_metric)
        self.baselines = dict(baselines or {})
        for name in self.baselines:
            if name == 'det' and self.det_metric is None or \
                    name == 'seg' and self.seg_metric is None:
                raise ValueError(f'MultiTaskMetric: baseline {name!r} given '
                                 f'but the {name} metric is absent')

    @property
    def metrics(self) -> List[BaseMetric]:
        """The configured sub-metrics."""
        return [m for m in (self.det_metric, self.seg_metric) if m is not None]

    @property
    def dataset_meta(self) -> Optional[dict]:
        """Meta info of the dataset, shared with the sub-metrics."""
        return self._dataset_meta

    @dataset_meta.setter
    def dataset_meta(self, dataset_meta: dict) -> None:
        self._dataset_meta = dataset_meta
        for metric in self.metrics:
            metric.dataset_meta = dataset_meta

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Forward one batch to every sub-metric.

        Args:
            data_batch (dict): The batch from the dataloader.
            data_samples (Sequence[dict]): Model outputs.
        """
        if self.det_metric is not None:
            det_samples = []
            for sample in data_samples:
                if isinstance(sample, dict) and 'pred_instances' not in sample:
                    # NuScenesMetric also reads (possibly empty) 2D results
                    sample = dict(sample, pred_instances={})
                det_samples.append(sample)
            self.det_metric.process(data_batch, det_samples)
        if self.seg_metric is not None:
            self.seg_metric.process(data_batch, data_samples)

    def evaluate(self, size: int) -> dict:
        """Evaluate every sub-metric, then add Delta_MTL.

        Args:
            size (int): Length of the whole evaluation dataset.

        Returns:
            dict: All sub-metric results plus ``Delta_MTL`` when baselines
            are configured.
        """
        merged = {}
        for metric in self.metrics:
            merged.update(metric.evaluate(size))
        return self.compute_metrics([merged])

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Merge the sub-metric results and add Delta_MTL.

        Args:
            results (list[dict]): One dict per sub-metric evaluation.

        Returns:
            dict[str, float]: Merged metrics (+ ``Delta_MTL``).
        """
        merged: Dict[str, float] = {}
        for part in results:
            merged.update(part)
        if not self.baselines or not merged:
            return merged  # non-main ranks receive the broadcast results
        current, base = {}, {}
        lower = set()
        for name, value in self.baselines.items():
            key = self._resolve(name, merged)
            current[key] = float(merged[key])
            base[key] = float(value)
            if key.rsplit('/', 1)[-1] in LOWER_IS_BETTER:
                lower.add(key)
        if any(math.isnan(v) for v in current.values()):
            merged['Delta_MTL'] = float('nan')
        else:
            merged['Delta_MTL'] = delta_mtl(current, base, tuple(lower))
        return merged

    @staticmethod
    def _resolve(name: str, merged: Dict[str, float]) -> str:
        """Full metric key of a baseline name (see the class docstring)."""
        name = DEFAULT_TASK_KEYS.get(name, name)
        if name in merged:
            return name
        matches = [k for k in merged if k.endswith('/' + name)]
        if len(matches) != 1:
            raise KeyError(
                f'MultiTaskMetric: baseline metric {name!r} matches '
                f'{len(matches)} reported keys {matches}; available: '
                f'{sorted(merged)}')
        return matches[0]
