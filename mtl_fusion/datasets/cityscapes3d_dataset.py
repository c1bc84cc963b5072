"""Cityscapes-3D (real or synthetic) indexed straight from its folder tree."""
import glob
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence

from mmengine.dataset import BaseDataset

from mmdet3d.registry import DATASETS
from mmdet3d.structures import get_box_type
from .cityscapes3d_geometry import camera_intrinsics

__all__ = ['Cityscapes3DDataset']

# folder and file-name suffix of every file of an image
_FILES = {
    'img': ('leftImg8bit', '_leftImg8bit.png'),
    'seg': ('gtFine', '_gtFine_labelIds.png'),
    'depth': ('disparity', '_disparity.png'),
    'camera': ('camera', '_camera.json'),
    'det': ('gtBbox3d', '_gtBbox3d.json'),
}
_PATH_KEYS = {
    'img': 'img_path',
    'seg': 'seg_map_path',
    'depth': 'disparity_path',
    'camera': 'camera_path',
    'det': 'bbox3d_path',
}
_ANN_TYPES = ('det', 'seg', 'depth')


def _cityscapes_metainfo() -> dict:
    """Classes and palettes from ``cityscapesscripts.helpers.labels``."""
    from cityscapesscripts.helpers.labels import labels, name2label
    det_classes = ('car', 'truck', 'bus', 'train', 'motorcycle', 'bicycle',
                   'caravan', 'trailer')
    train = sorted((lab for lab in labels if 0 <= lab.trainId < 255),
                   key=lambda lab: lab.trainId)
    return dict(
        classes=det_classes,
        seg_classes=tuple(lab.name for lab in train),
        palette=[list(lab.color) for lab in train],
        det_palette=[list(name2label[c].color) for c in det_classes])


@DATASETS.register_module()
class Cityscapes3DDataset(BaseDataset):
    """Cityscapes-3D: mono 3D boxes, semantic labels and disparity.

    The dataset indexes the real Cityscapes-3D folder layout (also what
    ``tools/create_data.py synthetic-cityscapes3d`` writes) without any
    annotation file::

        <data_root>/leftImg8bit/<split>/<city>/<stem>_leftImg8bit.png
        <data_root>/gtFine/<split>/<city>/<stem>_gtFine_labelIds.png
        <data_root>/disparity/<split>/<city>/<stem>_disparity.png
        <data_root>/camera/<split>/<city>/<stem>_camera.json
        <data_root>/gtBbox3d/<split>/<city>/<stem>_gtBbox3d.json

    Every image found under ``leftImg8bit/<split>`` is a sample; its camera
    json is always required (it gives ``cam2img``), the other files
    according to ``ann_types``. A missing or unreadable file is an error
    that names it. Each data info holds ``img_path``, ``seg_map_path``,
    ``disparity_path``, ``camera_path``, ``bbox3d_path`` (for the required
    files), ``camera`` (the camera json dict), ``cam2img`` (3x3 nested
    list, original image), ``sample_idx`` (the stem, e.g.
    ``munich_000000_000019``), ``city`` and ``split``; ``box_type_3d`` /
    ``box_mode_3d`` (camera boxes) are added when a sample is prepared.

    Metainfo: ``classes`` (the 8 Cityscapes-3D detection classes, label ids
    0..7 in that order), ``seg_classes`` (the 19 Cityscapes train ids),
    ``palette`` (colours of the seg classes), ``det_palette``.

    Args:
        data_root (str): Root of the tree.
        split (str): ``'train'``, ``'val'`` or ``'test'`` (any folder name
            under ``leftImg8bit``). Defaults to ``'train'``.
        ann_types (Sequence[str]): Annotation files each sample must have:
            any of ``'det'`` (gtBbox3d), ``'seg'`` (gtFine labelIds) and
            ``'depth'`` (disparity). Defaults to all three.
        cities (Sequence[str], optional): Only these cities. Defaults to
            all.
        pipeline (list): Processing pipeline. Defaults to ``[]``.
        test_mode (bool): Defaults to False.
        **kwargs: Other arguments of :class:`mmengine.dataset.BaseDataset`
            (``metainfo``, ``indices``, ``serialize_data``, ``lazy_init``,
            ``max_refetch``).
    """

    METAINFO = _cityscapes_metainfo()

    def __init__(self,
                 data_root: str,
                 split: str = 'train',
                 ann_types: Sequence[str] = _ANN_TYPES,
                 cities: Optional[Sequence[str]] = None,
                 pipeline: list = [],
                 test_mode: bool = False,
                 **kwargs) -> None:
        unknown = sorted(set(ann_types) - set(_ANN_TYPES))
        if unknown:
            raise ValueError(f'unknown ann_types {unknown}; choose from '
                             f'{list(_ANN_TYPES)}')
        self.split = split
        self.ann_types = tuple(ann_types)
        self.cities = None if cities is None else tuple(cities)
        self.box_type_3d, self.box_mode_3d = get_box_type('Camera')
        super().__init__(
            ann_file='',
            data_root=data_root,
            pipeline=pipeline,
            test_mode=test_mode,
            **kwargs)

    def _path(self, kind: str, city: str, stem: str) -> str:
        folder, suffix = _FILES[kind]
        return osp.join(self.data_root, folder, self.split, city,
                        stem + suffix)

    def load_data_list(self) -> List[dict]:
        """Index the images of the split and check their files.

        Returns:
            list[dict]: One data info per image, sorted by city and stem.
        """
        img_dir = osp.join(self.data_root, _FILES['img'][0], self.split)
        if not osp.isdir(img_dir):
            raise FileNotFoundError(
                f'Cityscapes3DDataset: image folder {img_dir} does not exist '
                f'(data_root={self.data_root!r}, split={self.split!r})')
        suffix = _FILES['img'][1]
        paths = sorted(glob.glob(osp.join(img_dir, '*', '*' + suffix)))
        if self.cities is not None:
            paths = [p for p in paths if osp.basename(osp.dirname(p))
                     in self.cities]
        if not paths:
            raise FileNotFoundError(
                f'Cityscapes3DDataset: no *{suffix} images in {img_dir}/<city>'
                + ('' if self.cities is None else f' for cities '
                   f'{list(self.cities)}'))
        data_list, missing = [], []
        for img_path in paths:
            city = osp.basename(osp.dirname(img_path))
            stem = osp.basename(img_path)[:-len(suffix)]
            info: Dict = dict(
                img_path=img_path,
                stem=stem,
                sample_idx=stem,
                city=city,
                split=self.split)
            for kind in ('camera', ) + self.ann_types:
                path = self._path(kind, city, stem)
                if not osp.isfile(path):
                    missing.append(path)
                info[_PATH_KEYS[kind]] = path
            data_list.append(info)
        if missing:
            more = (f' (and {len(missing) - 5} more)'
                    if len(missing) > 5 else '')
            raise FileNotFoundError(
                f'Cityscapes3DDataset: {len(missing)} annotation file(s) '
                f'missing: {", ".join(missing[:5])}{more}')
        for info in data_list:
            info['camera'] = _load_camera(info['camera_path'],
                                          'depth' in self.ann_types)
            info['cam2img'] = camera_intrinsics(info['camera']).tolist()
        return data_list

    def get_data_info(self, idx: int) -> dict:
        """Data info of ``idx``; ``sample_idx`` stays the image stem.

        Args:
            idx (int): Sample index.

        Returns:
            dict: A copy of the data info.
        """
        info = super().get_data_info(idx)
        info['sample_idx'] = info['stem']
        return info

    def prepare_data(self, idx: int) -> dict:
        """Data info of ``idx`` with the box type, through the pipeline.

        Args:
            idx (int): Sample index.

        Returns:
            dict: The pipeline's output.
        """
        info = self.get_data_info(idx)
        info['box_type_3d'] = self.box_type_3d
        info['box_mode_3d'] = self.box_mode_3d
        return self.pipeline(info)


def _load_camera(path: str, need_baseline: bool) -> dict:
    """A camera json, checked for the fields the pipeline reads."""
    try:
        with open(path) as f:
            camera = json.load(f)
    except (OSError, ValueError) as err:
        raise ValueError(
            f'Cityscapes3DDataset: cannot read camera file {path}: {err}')
    try:
        camera_intrinsics(camera)
        if need_baseline and 'baseline' not in camera.get('extrinsic', {}):
            raise KeyError('camera "extrinsic" block has no field '
                           "'baseline'")
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f'Cityscapes3DDataset: bad camera file {path}: '
                         f'{err}') from None
    return camera
