"""nuScenes dataset for joint 3D detection and BEV map segmentation."""
from typing import List, Optional, Tuple

import numpy as np
from mmengine.fileio import exists, load

from mmdet3d.datasets import NuScenesDataset
from mmdet3d.registry import DATASETS
from .transforms.load_bev_map_masks import LoadBEVMapMasks

__all__ = ['MultiTaskNuScenesDataset']

# fraction of training samples labelled for detection only; the rest are
# labelled for map segmentation only
TASK_LABEL_SETTINGS = {
    'full': None,
    'disjoint-normal': 0.75,  # det:seg = 3:1
    'disjoint-balance': 0.5,  # det:seg = 1:1
}


def _contains_transform(pipeline, cls) -> bool:
    """Whether a (possibly nested) Compose holds an instance of ``cls``."""
    for transform in getattr(pipeline, 'transforms', []):
        if isinstance(transform, cls) or _contains_transform(transform, cls):
            return True
    return False


@DATASETS.register_module()
class MultiTaskNuScenesDataset(NuScenesDataset):
    """nuScenes with 3D-detection and BEV map-segmentation labels.

    On top of :class:`mmdet3d.datasets.NuScenesDataset`:

    * The info file is validated: a missing file, a file that is not a dict
      with ``data_list`` and ``metainfo`` (the error names the missing key),
      and legacy (pre-v2, ``infos``/``metadata``) infos raise errors naming
      the file; legacy infos must be regenerated with
      ``tools/create_data.py``.
    * When map labels are used (``with_map_labels``, by default whenever the
      pipeline contains :class:`LoadBEVMapMasks`), every entry must carry
      ``location`` (the map name of its log); the error names the sample
      token.
    * Label settings of FULLER (``task_labels``). Every entry gets two flags
      that the pipeline and the heads read:

      - ``has_det_labels`` (bool): False means the sample has no detection
        labels. Its ``ann_info`` is emptied (0 boxes), it is exempt from
        ``filter_empty_gt``, and the packed metainfo carries the flag; heads
        must then skip the detection loss (the empty box list means
        "unlabelled", not "no objects").
      - ``has_map_labels`` (bool): False means no map labels.
        :class:`LoadBEVMapMasks` skips such samples and no ``gt_bev_masks``
        is packed. Also False for every sample when map labels are not used.

      Settings: ``'full'`` (both tasks everywhere); ``'disjoint-normal'``
      (each training sample labelled for one task, det:seg = 3:1) and
      ``'disjoint-balance'`` (1:1). The disjoint split is a permutation of
      the sample positions drawn with ``task_label_seed``:
      ``round(N * det_fraction)`` samples get detection labels, the rest
      map labels, identically in every process and run. Disjoint settings
      are for training only (``test_mode=False``).

    Args:
        task_labels (str): ``'full'``, ``'disjoint-normal'`` or
            ``'disjoint-balance'``. Defaults to 'full'.
        task_label_seed (int): Seed of the disjoint assignment. Defaults to
            0.
        with_map_labels (bool, optional): Whether samples carry map labels.
            Defaults to None (True iff the pipeline has LoadBEVMapMasks).
        **kwargs: Arguments of :class:`NuScenesDataset`.
    """

    def __init__(self,
                 *args,
                 task_labels: str = 'full',
                 task_label_seed: int = 0,
                 with_map_labels: Optional[bool] = None,
                 **kwargs) -> None:
        if task_labels not in TASK_LABEL_SETTINGS:
            raise ValueError(
                f'MultiTaskNuScenesDataset: task_labels must be one of '
                f'{list(TASK_LABEL_SETTINGS)}, got {task_labels!r}')
        if task_labels != 'full' and kwargs.get('test_mode', False):
            raise ValueError(
                f"MultiTaskNuScenesDataset: task_labels={task_labels!r} is a "
                'training setting; evaluation datasets use full labels')
        self.task_labels = task_labels
        self.task_label_seed = int(task_label_seed)
        self._with_map_labels = with_map_labels
        super().__init__(*args, **kwargs)

    @property
    def with_map_labels(self) -> bool:
        """Whether samples carry BEV map labels."""
        if self._with_map_labels is None:
            self._with_map_labels = _contains_transform(
                self.pipeline, LoadBEVMapMasks)
        return bool(self._with_map_labels)

    # ------------------------------------------------------------------
    # info file validation
    def _validate_ann_file(self) -> None:
        """Raise a precise error for a missing or malformed info file."""
        if not exists(self.ann_file, backend_args=self.backend_args):
            raise FileNotFoundError(
                f'MultiTaskNuScenesDataset: info file not found: '
                f'{self.ann_file}')
        annotations = load(self.ann_file, backend_args=self.backend_args)
        if isinstance(annotations, dict) and ('infos' in annotations
                                              or 'metadata' in annotations):
            raise ValueError(
                f'MultiTaskNuScenesDataset: {self.ann_file} is a legacy '
                "(pre-v2) info file (keys 'infos'/'metadata'); regenerate "
                'it with tools/create_data.py')
        if not isinstance(annotations, dict):
            raise TypeError(
                f'MultiTaskNuScenesDataset: {self.ann_file} holds a '
                f'{type(annotations).__name__}, expected a v2 info dict '
                "with keys 'data_list' and 'metainfo'; regenerate it with "
                'tools/create_data.py')
        for key in ('data_list', 'metainfo'):
            if key not in annotations:
                raise KeyError(
                    f"MultiTaskNuScenesDataset: {self.ann_file} has no "
                    f"'{key}' key (found {sorted(annotations)}); not a v2 "
                    'info file, regenerate it with tools/create_data.py')

    def load_data_list(self) -> List[dict]:
        """Validate the info file, load it and attach the task flags.

        Returns:
            list[dict]: Parsed infos with ``has_det_labels`` and
            ``has_map_labels``.
        """
        if not exists(self.ann_file, backend_args=self.backend_args):
            raise FileNotFoundError(
                f'MultiTaskNuScenesDataset: info file not found: '
                f'{self.ann_file}')
        try:
            data_list = super().load_data_list()
        except (TypeError, ValueError):
            self._validate_ann_file()  # raises the precise error
            raise
        det_flags, map_flags = self._task_flags(len(data_list))
        for info, has_det, has_map in zip(data_list, det_flags, map_flags):
            info['has_det_labels'] = bool(has_det)
            info['has_map_labels'] = bool(has_map)
            if not has_det and 'ann_info' in info:
                self._drop_det_labels(info)
        return data_list

    def _task_flags(self, num: int) -> Tuple[np.ndarray, np.ndarray]:
        """Per-sample (has_det_labels, has_map_labels) of the setting."""
        det_fraction = TASK_LABEL_SETTINGS[self.task_labels]
        if det_fraction is None:
            return (np.ones(num, dtype=bool),
                    np.full(num, self.with_map_labels, dtype=bool))
        if not self.with_map_labels:
            raise ValueError(
                f'MultiTaskNuScenesDataset: task_labels='
                f'{self.task_labels!r} needs map labels, but the pipeline '
                'has no LoadBEVMapMasks (or with_map_labels=False)')
        order = np.random.RandomState(self.task_label_seed).permutation(num)
        has_det = np.zeros(num, dtype=bool)
        has_det[order[:int(round(num * det_fraction))]] = True
        return has_det, ~has_det

    def _drop_det_labels(self, info: dict) -> None:
        """Empty the detection annotations of a map-only sample."""
        for label in info['ann_info']['gt_labels_3d']:
            if label != -1:
                self.num_ins_per_cat[label] -= 1
        info['ann_info'] = self.parse_ann_info(dict(instances=[]))

    def parse_data_info(self, info: dict) -> dict:
        """Parse one raw entry; require ``location`` for map labels.

        Args:
            info (dict): Raw entry of ``data_list``.

        Returns:
            dict: Parsed entry.
        """
        if self.with_map_labels and 'location' not in info:
            raise KeyError(
                f"MultiTaskNuScenesDataset: sample {info.get('token', '?')} "
                f"in {self.ann_file} has no 'location' key, which map labels "
                'need; regenerate the infos with tools/create_data.py or '
                'add the log location to each data_list entry')
        return super().parse_data_info(info)

    def prepare_data(self, index: int):
        """Run the pipeline; map-only samples are exempt from
        ``filter_empty_gt`` (their empty box list is not a reason to
        re-draw).

        Args:
            index (int): Sample index.

        Returns:
            dict or None: Packed sample (None asks for a re-draw).
        """
        if self.test_mode or not self.filter_empty_gt:
            return super().prepare_data(index)
        info = self.get_data_info(index)
        if info.get('has_det_labels', True):
            return super().prepare_data(index)
        info['box_type_3d'] = self.box_type_3d
        info['box_mode_3d'] = self.box_mode_3d
        return self.pipeline(info)
