"""Parameter counts of the FULLER heads vs dense heads, nuScenes sizes."""
import pytest
from mmdet3d.registry import MODELS
from mmdet3d.utils import register_all_modules

from mtl_fusion.models.dense_heads import FullerDetHead
from mtl_fusion.models.seg_heads import BEVDenseSegHead, FullerSegHead
from mtl_fusion.models.utils import count_parameters

# CenterPoint nuScenes head (mmdet3d configs/_base_/models/
# centerpoint_voxel01_second_secfpn_nus.py), in_channels 512.
CENTER_HEAD = dict(
    type='CenterHead',
    in_channels=512,
    tasks=[
        dict(num_class=1, class_names=['car']),
        dict(num_class=2, class_names=['truck', 'construction_vehicle']),
        dict(num_class=2, class_names=['bus', 'trailer']),
        dict(num_class=1, class_names=['barrier']),
        dict(num_class=2, class_names=['motorcycle', 'bicycle']),
        dict(num_class=2, class_names=['pedestrian', 'traffic_cone']),
    ],
    common_heads=dict(
        reg=(2, 2), height=(1, 2), dim=(3, 2), rot=(2, 2), vel=(2, 2)),
    share_conv_channel=64,
    bbox_coder=dict(
        type='CenterPointBBoxCoder',
        post_center_range=[-61.2, -61.2, -10.0, 61.2, 61.2, 10.0],
        max_num=500,
        score_threshold=0.1,
        out_size_factor=8,
        voxel_size=[0.075, 0.075],
        code_size=9,
        pc_range=[-54, -54]),
    separate_head=dict(type='SeparateHead', init_bias=-2.19, final_kernel=3),
    loss_cls=dict(type='mmdet.GaussianFocalLoss', reduction='mean'),
    loss_bbox=dict(type='mmdet.L1Loss', reduction='mean', loss_weight=0.25),
    norm_bbox=True)


def test_parameter_counts_nuscenes():
    register_all_modules(init_default_scope=False)
    fuller_det = count_parameters(FullerDetHead())
    fuller_seg = count_parameters(FullerSegHead())
    center = count_parameters(MODELS.build(CENTER_HEAD))
    dense_seg = count_parameters(BEVDenseSegHead())
    assert (fuller_det, fuller_seg) == (1017502, 873350)
    assert (center, dense_seg) == (1667142, 4723718)
    ratio = (fuller_det + fuller_seg) / (center + dense_seg)
    assert ratio == pytest.approx(0.2959, abs=1e-4)
    # each FULLER head alone is lighter than its dense counterpart
    assert fuller_det < center and fuller_seg < dense_seg
