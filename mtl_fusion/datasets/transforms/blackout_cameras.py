"""Black out whole camera views: a sensor-failure test."""
import numbers
from typing import List, Optional, Sequence, Union

import numpy as np
from mmcv.transforms import BaseTransform

from mmdet3d.registry import TRANSFORMS
from ._corruption_rng import check_ratio, check_seed, count_of, sample_rng

__all__ = ['BlackoutCameras']


@TRANSFORMS.register_module()
class BlackoutCameras(BaseTransform):
    """Replace every pixel of some camera views by a constant.

    The views are given by name (``views``, the keys of
    ``results['images']``, e.g. ``'CAM_FRONT'``) or as a fraction
    (``ratio``: ``round(ratio * num_views)`` views drawn without replacement
    from ``numpy.random.default_rng(seed)``, the same views for every sample,
    or with ``per_sample=True`` from a generator seeded by ``seed`` and the
    sample token). Exactly one of the two. ``ratio=0`` (or ``views=[]``)
    returns the results unchanged.

    ``fill`` is written in the pixel values of the loaded image, i.e. before
    the data preprocessor's normalisation and in the loader's channel order
    (BGR for ``LoadMultiViewImageFromFiles`` with ``color_type='color'``):

    * ``fill=0`` (default): a black image, what a dead or covered camera
      delivers; after normalisation it is ``-mean / std``.
    * ``fill=<the preprocessor's mean, in the loaded channel order>``: the
      view is 0 after normalisation, i.e. "no signal" for the network.
      ``add_test_corruption(cfg, 'camera_blackout:...:fill=mean')`` reads it
      from ``cfg.model.data_preprocessor`` (reversed when ``bgr_to_rgb``).

    Place it right after the image loader, before the image augmentation
    (``add_test_corruption`` does); camera geometry is left untouched.

    Args:
        views (Sequence[str], optional): Names of the views to black out.
            Defaults to None.
        ratio (float, optional): Fraction of the views, in [0, 1].
            Defaults to None.
        seed (int): Seed of the view choice. Defaults to 0.
        per_sample (bool): Draw the views per sample (seed + token).
            Defaults to False.
        fill (float | Sequence[float]): Pixel value, one number or one per
            channel. Defaults to 0.
    """

    def __init__(self,
                 views: Optional[Sequence[str]] = None,
                 ratio: Optional[float] = None,
                 seed: int = 0,
                 per_sample: bool = False,
                 fill: Union[float, Sequence[float]] = 0.0) -> None:
        name = type(self).__name__
        if (views is None) == (ratio is None):
            raise ValueError(f'{name}: give exactly one of views (camera '
                             f'names) and ratio (fraction of the views); got '
                             f'views={views!r}, ratio={ratio!r}')
        if views is not None:
            if isinstance(views, (str, bytes)) or not isinstance(
                    views, Sequence) or not all(
                        isinstance(v, str) for v in views):
                raise TypeError(f'{name}: views must be a list of camera '
                                f"names (e.g. ['CAM_FRONT']), got {views!r}")
            if len(set(views)) != len(views):
                raise ValueError(f'{name}: views has duplicates: '
                                 f'{list(views)}')
            views = list(views)
        self.views: Optional[List[str]] = views
        self.ratio = check_ratio(name, ratio)
        self.seed = check_seed(name, seed)
        if not isinstance(per_sample, bool):
            raise TypeError(f'{name}: per_sample must be a bool, got '
                            f'{per_sample!r}')
        self.per_sample = per_sample
        values = np.atleast_1d(np.asarray(fill, dtype=object))
        if values.ndim != 1 or not len(values) or not all(
                isinstance(v, numbers.Real) and not isinstance(v, bool)
                and np.isfinite(v) for v in values):
            raise ValueError(f'{name}: fill must be a finite number or one '
                             f'per channel, got {fill!r}')
        self.fill = np.asarray(values, dtype=np.float64)

    def chosen_views(self, results: dict) -> List[int]:
        """Indices (in ``results['img']``) of the views to black out.

        Args:
            results (dict): Pipeline results after the image loader.

        Returns:
            list[int]: Sorted view indices.
        """
        name = type(self).__name__
        num_views = len(results['img'])
        if self.views is not None:
            if not self.views:
                return []
            names = list(results.get('images') or [])
            if len(names) != num_views:
                raise KeyError(
                    f"{name}: views by name need results['images'] with one "
                    f'entry per loaded view ({num_views}), got {names}')
            unknown = [v for v in self.views if v not in names]
            if unknown:
                raise KeyError(f'{name}: unknown views {unknown}; this '
                               f'sample has {names}')
            return sorted(names.index(v) for v in self.views)
        count = count_of(self.ratio, num_views)
        if count == 0:
            return []
        rng = sample_rng(name, self.seed, self.per_sample, results)
        return sorted(int(i) for i in rng.choice(num_views, count,
                                                 replace=False))

    def transform(self, results: dict) -> dict:
        """Fill the chosen views.

        Args:
            results (dict): Pipeline results with ``img`` (a list of HxWxC
                arrays or an (N, H, W, C) array).

        Returns:
            dict: ``results`` with those views replaced (a new list; the
            other views are the same arrays). Unchanged when no view is
            chosen.
        """
        name = type(self).__name__
        if 'img' not in results:
            raise KeyError(f"{name}: results have no 'img'; place it after "
                           'the image loader')
        chosen = self.chosen_views(results)
        if not chosen:
            return results
        imgs = results['img']
        out = list(imgs) if isinstance(imgs, (list, tuple)) else imgs.copy()
        for i in chosen:
            img = np.asarray(imgs[i])
            channels = img.shape[-1] if img.ndim == 3 else 1
            if len(self.fill) not in (1, channels):
                raise ValueError(f'{name}: fill has {len(self.fill)} values '
                                 f'but view {i} has {channels} channels')
            filled = np.empty_like(img)
            filled[...] = self.fill if len(self.fill) > 1 else self.fill[0]
            out[i] = filled
        results['img'] = out
        return results

    def __repr__(self) -> str:
        what = (f'views={self.views}'
                if self.views is not None else f'ratio={self.ratio}')
        return (f'{type(self).__name__}({what}, seed={self.seed}, '
                f'per_sample={self.per_sample}, fill={self.fill.tolist()})')
