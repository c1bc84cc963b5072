"""Run the official Cityscapes-3D box evaluation on in-memory predictions.

The evaluation itself is cityscapesScripts'
``evaluation/evalObjectDetection3d.py`` (``Box3dEvaluator`` with its
``EvaluationParameters``); this module only writes predictions as
Cityscapes-3D json files, restricts the GT folder to the evaluated images
and flattens the evaluator's results.
"""
import json
import logging
import os
import os.path as osp
import shutil
import warnings
from typing import Dict, List, Optional, Sequence

import numpy as np
from cityscapesscripts.evaluation.objectDetectionHelpers import (
    MATCHING_AMODAL, MATCHING_MODAL, EvaluationParameters)

from mtl_fusion.datasets.cityscapes3d_geometry import (
    amodal_boxes_2d, camera_boxes_to_cs_objects, camera_intrinsics)

__all__ = [
    'OFFICIAL_3D_LABELS', 'load_box3d_evaluation', 'gt_file_of',
    'write_prediction_files', 'run_box3d_evaluation'
]

#: Labels of the official evaluation script (its ``--labels`` default).
OFFICIAL_3D_LABELS = ('car', 'truck', 'bus', 'train', 'motorcycle',
                      'bicycle')
# mean criteria of the evaluator's results, with the reported names
_MEAN_KEYS = dict(
    mAP='AP',
    mCenter_Dist='Center_Dist',
    mSize_Similarity='Size_Similarity',
    mOS_Yaw='OS_Yaw',
    mOS_Pitch_Roll='OS_Pitch_Roll')


def load_box3d_evaluation():
    """Import cityscapesScripts' 3D box evaluation module.

    Importing it configures logging as a side effect (``basicConfig`` with a
    file ``eval.log`` in the working directory and a coloured root handler);
    both are undone here: the root logger keeps its handlers and level.

    Returns:
        module: ``cityscapesscripts.evaluation.evalObjectDetection3d``.
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    if not handlers:
        # basicConfig only acts on a root logger without handlers
        root.addHandler(logging.NullHandler())
    try:
        from cityscapesscripts.evaluation import evalObjectDetection3d
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    return evalObjectDetection3d


def gt_file_of(gt_dir: str, stem: str) -> str:
    """Path of an image's GT json: ``<gt_dir>/<city>/<stem>_gtBbox3d.json``.

    Args:
        gt_dir (str): The ``gtBbox3d/<split>`` folder.
        stem (str): Image stem, ``<city>_<seq>_<frame>``.

    Returns:
        str: The file path (not checked).
    """
    return osp.join(gt_dir, stem.split('_')[0], f'{stem}_gtBbox3d.json')


def _load_gt(path: str) -> dict:
    """Load a GT json and check what the official evaluator reads."""
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'Cityscapes3DMetric: no 3D box GT file {path} for an evaluated '
            'image (the GT folder must hold every evaluated image)')
    with open(path) as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f'invalid json in GT file {path}: {err}') from err
    for key in ('objects', 'sensor', 'ignore'):
        if key not in data:
            raise KeyError(f'GT file {path} has no {key!r} (cityscapesScripts'
                           "' 3D evaluation needs 'objects', 'sensor' and "
                           "'ignore')")
    for key in ('sensor_T_ISO_8855', 'fx', 'fy', 'u0', 'v0'):
        if key not in data['sensor']:
            raise KeyError(f'GT file {path}: "sensor" has no {key!r}')
    return data


def write_prediction_files(predictions: Sequence[dict], classes: Sequence[str],
                           gt_dir: str, pred_dir: str,
                           gt_subset_dir: str) -> List[str]:
    """Write one Cityscapes-3D json per image and link its GT file.

    Args:
        predictions (Sequence[dict]): Per image ``stem`` (str),
            ``bboxes_3d`` (N, 7) mmdet3d camera boxes (bottom centre),
            ``pitch``, ``roll``, ``scores``, ``labels`` (N,), and
            ``bboxes`` (N, 4) xyxy 2D boxes in original-image pixels or
            None (then the projection of the 3D box is written).
        classes (Sequence[str]): Class name of each label id.
        gt_dir (str): The ``gtBbox3d/<split>`` folder.
        pred_dir (str): Folder receiving ``<city>/<stem>_pred.json``.
        gt_subset_dir (str): Folder receiving a link (or copy) of each
            evaluated image's GT file, laid out like ``gt_dir``.

    Returns:
        list[str]: The written prediction files.
    """
    written = []
    seen = set()
    for pred in predictions:
        stem = pred['stem']
        if stem in seen:
            raise ValueError(f'Cityscapes3DMetric: image {stem} was '
                             'evaluated twice')
        seen.add(stem)
        gt_path = gt_file_of(gt_dir, stem)
        gt = _load_gt(gt_path)
        sensor = gt['sensor']
        labels = np.asarray(pred['labels']).astype(np.int64).reshape(-1)
        if len(labels) and (labels.min() < 0 or labels.max() >= len(classes)):
            raise ValueError(f'Cityscapes3DMetric: image {stem} has label ids '
                             f'outside 0..{len(classes) - 1} ({classes})')
        objects = camera_boxes_to_cs_objects(pred['bboxes_3d'], pred['pitch'],
                                             pred['roll'], sensor)
        img_shape = (int(gt.get('imgHeight', 1024)),
                     int(gt.get('imgWidth', 2048)))
        amodal = amodal_boxes_2d(pred['bboxes_3d'], pred['pitch'],
                                 pred['roll'], camera_intrinsics(sensor),
                                 img_shape)
        modal = amodal if pred.get('bboxes') is None else np.asarray(
            pred['bboxes'], dtype=np.float64).reshape(-1, 4)
        scores = np.asarray(pred['scores'], dtype=np.float64).reshape(-1)
        out = []
        for i, obj in enumerate(objects):
            out.append({
                '2d': {
                    'amodal': _xywh(amodal[i]),
                    'modal': _xywh(modal[i])
                },
                '3d': dict(obj, format='CRS_ISO8855'),
                'label': classes[labels[i]],
                'score': float(scores[i])
            })
        path = osp.join(pred_dir, stem.split('_')[0], f'{stem}_pred.json')
        os.makedirs(osp.dirname(path), exist_ok=True)
        with open(path, 'w') as f:
            json.dump(dict(objects=out), f)
        written.append(path)
        link = gt_file_of(gt_subset_dir, stem)
        os.makedirs(osp.dirname(link), exist_ok=True)
        try:
            os.symlink(osp.abspath(gt_path), link)
        except OSError:
            shutil.copyfile(gt_path, link)
    return written


def _xywh(box: np.ndarray) -> List[float]:
    x1, y1, x2, y2 = (float(v) for v in box)
    return [x1, y1, x2 - x1, y2 - y1]


def run_box3d_evaluation(gt_dir: str,
                         pred_dir: str,
                         labels: Sequence[str] = OFFICIAL_3D_LABELS,
                         min_iou_to_match: float = 0.7,
                         max_depth: int = 100,
                         step_size: int = 5,
                         matching: str = 'amodal',
                         working_confidence: float = -1.0,
                         num_conf: int = 50,
                         logger: Optional[logging.Logger] = None
                         ) -> Dict[str, float]:
    """cityscapesScripts' ``Box3dEvaluator`` on a GT and a prediction folder.

    Args:
        gt_dir (str): GT json files (``*_gtBbox3d.json``, searched
            recursively), exactly the evaluated images.
        pred_dir (str): Prediction json files, one per image.
        labels (Sequence[str]): Evaluated classes. Defaults to the official
            six.
        min_iou_to_match (float): 2D IoU for a match. Defaults to 0.7.
        max_depth (int): Maximal BEV distance (m) of the depth-dependent
            scores. Defaults to 100.
        step_size (int): Distance bin size (m). Defaults to 5.
        matching (str): ``'amodal'`` or ``'modal'`` 2D boxes for matching.
            Defaults to 'amodal'.
        working_confidence (float): Score threshold of the TP criteria;
            -1 chooses it per class (best precision * recall). Defaults to
            -1.0.
        num_conf (int): Number of score thresholds of the AP. Defaults to 50.
        logger (logging.Logger, optional): Where to log classes without GT.
            Defaults to None.

    Returns:
        dict[str, float]: ``DS`` (mean Detection Score over the classes with
        GT), ``AP``, ``Center_Dist``, ``Size_Similarity``, ``OS_Yaw``,
        ``OS_Pitch_Roll`` (means over the same classes), and per class with
        GT ``DS_<cls>``, ``AP_<cls>``, ``Center_Dist_<cls>``,
        ``Size_Similarity_<cls>``, ``OS_Yaw_<cls>``, ``OS_Pitch_Roll_<cls>``
        (all fractions in [0, 1]). NaN when no evaluated class has GT.
    """
    module = load_box3d_evaluation()
    methods = dict(amodal=MATCHING_AMODAL, modal=MATCHING_MODAL)
    if matching not in methods:
        raise ValueError(f"matching must be 'amodal' or 'modal', got "
                         f'{matching!r}')
    params = EvaluationParameters(
        list(labels),
        min_iou_to_match=min_iou_to_match,
        max_depth=max_depth,
        step_size=step_size,
        matching_method=methods[matching],
        cw=working_confidence,
        num_conf=num_conf)
    evaluator = module.Box3dEvaluator(params)
    evaluator.checkCw()
    evaluator.loadGT(gt_dir)
    evaluator.loadPredictions(pred_dir)
    with np.errstate(all='ignore'), warnings.catch_warnings():
        # the means over no class with GT are NaN (reported below)
        warnings.simplefilter('ignore', RuntimeWarning)
        evaluator.evaluate()
    res = evaluator.results
    with_gt = [c for c in labels if res['GT_stats'].get(c, 0) > 0]
    if not with_gt:
        if logger is not None:
            logger.warning('Cityscapes3DMetric: no GT box of the evaluated '
                           f'classes {list(labels)}: DS is NaN')
        return {k: float('nan') for k in ('DS', *_MEAN_KEYS.values())}
    if logger is not None and len(with_gt) < len(labels):
        logger.info('Cityscapes3DMetric: classes without GT (left out of the '
                    f'means): {[c for c in labels if c not in with_gt]}')
    out = {'DS': float(res['mDetection_Score'])}
    for key, name in _MEAN_KEYS.items():
        out[name] = float(res[key])
    for cls in with_gt:
        out[f'DS_{cls}'] = float(res['Detection_Score'][cls])
        for name in _MEAN_KEYS.values():
            out[f'{name}_{cls}'] = float(res[name][cls]['auc'])
    return out
