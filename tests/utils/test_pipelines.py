"""nus_multi_task_pipelines: one definition of the multi-task pipelines."""
import pytest

from mtl_fusion.utils.pipelines import nus_multi_task_pipelines

SETTINGS = dict(
    data_root='data/x/',
    class_names=['car'],
    map_classes=['drivable_area'],
    point_cloud_range=[-5.0, -5.0, -1.0, 5.0, 5.0, 1.0],
    bev_xbound=[-4.0, 4.0, 0.5],
    bev_ybound=[-4.0, 4.0, 0.5],
    sweeps_num=3,
    image_size=[32, 96],
    img_resize_lim=[0.9, 1.1],
    img_resize_relative=True,
    img_rot_lim=[-5.4, 5.4],
    bev_rot_range=[-0.1, 0.1],
    bev_scale_range=[0.9, 1.1],
    bev_translation_std=[0.5, 0.5, 0.5])


def _types(pipeline):
    return [step['type'] for step in pipeline]


def test_fusion_pipelines_in_order():
    train, test = nus_multi_task_pipelines(**SETTINGS)
    assert _types(train) == [
        'StrictLoadPointsFromFile', 'StrictLoadPointsFromMultiSweeps',
        'StrictLoadMultiViewImageFromFiles', 'LoadAnnotations3D',
        'MultiViewImageAug3D', 'BEVGlobalRotScaleTrans', 'LoadBEVMapMasks',
        'BEVRandomFlip3D', 'PointsRangeFilter', 'ObjectRangeFilter',
        'ObjectNameFilter', 'PointShuffle', 'PackMultiTaskInputs'
    ]
    assert _types(test) == [
        'StrictLoadPointsFromFile', 'StrictLoadPointsFromMultiSweeps',
        'StrictLoadMultiViewImageFromFiles', 'MultiViewImageAug3D',
        'LoadBEVMapMasks', 'PointsRangeFilter', 'PackMultiTaskInputs'
    ]
    assert train[-1]['keys'] == [
        'points', 'img', 'gt_bboxes_3d', 'gt_labels_3d', 'gt_masks_bev'
    ]
    assert test[-1]['keys'] == ['points', 'img', 'gt_masks_bev']
    assert train[1]['sweeps_num'] == 3 and 'test_mode' not in train[1]
    assert test[1]['test_mode'] is True
    assert train[4]['final_dim'] == [32, 96] and train[4]['is_train']
    assert train[6]['data_root'] == 'data/x/'


def test_single_modality_sets():
    cam_train, cam_test = nus_multi_task_pipelines(
        modalities=['camera'], **SETTINGS)
    assert not [t for t in _types(cam_train + cam_test) if 'Point' in t]
    assert cam_train[-1]['keys'] == [
        'img', 'gt_bboxes_3d', 'gt_labels_3d', 'gt_masks_bev'
    ]
    lidar_train, lidar_test = nus_multi_task_pipelines(
        modalities=['lidar'], **SETTINGS)
    assert not [
        t for t in _types(lidar_train + lidar_test)
        if 'Image' in t or 'MultiView' in t
    ]
    assert lidar_test[-1]['keys'] == ['points', 'gt_masks_bev']
    assert 'BEVGlobalRotScaleTrans' in _types(lidar_train)
    # camera-only training keeps the BEV augmentation (no points needed)
    assert {'BEVGlobalRotScaleTrans', 'BEVRandomFlip3D'} <= set(
        _types(cam_train))


def test_arguments_are_placed_not_read():
    """Placeholders (what {{_base_.x}} is while a config runs) pass through."""
    opaque = {k: f'<{k}>' for k in SETTINGS}
    train, _ = nus_multi_task_pipelines(**opaque)
    (masks, ) = [s for s in train if s['type'] == 'LoadBEVMapMasks']
    assert masks['classes'] == '<map_classes>'
    assert masks['xbound'] == '<bev_xbound>'


@pytest.mark.parametrize('modalities', [[], ['radar'], ['lidar', 'sonar']])
def test_bad_modalities_are_named(modalities):
    with pytest.raises(ValueError, match='modalities must be'):
        nus_multi_task_pipelines(modalities=modalities, **SETTINGS)
