"""projects/fuller_seg_on_centerpoint: upstream CenterPoint + Fuller-seg
assembled purely by config, trained with tools/train.py and evaluated with
tools/test.py on the synthetic fixture world."""
import glob
import importlib.util
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mtl_fusion.models.utils import count_parameters

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PROJECT = osp.join(REPO, 'projects', 'fuller_seg_on_centerpoint')
CFG = osp.join(PROJECT, 'configs',
               'fuller-seg-centerpoint_pillar08-tiny_second_secfpn_'
               '1xb2-2e_synthetic-nus.py')
DET = 'NuScenes metric/pred_instances_3d_NuScenes/'


def load_tool(name):
    spec = importlib.util.spec_from_file_location(
        f'mtl_tools_{name}', osp.join(REPO, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def data_options(root):
    root = root.rstrip('/') + '/'
    options = []
    for split in ('train', 'val', 'test'):
        options.append(f'{split}_dataloader.dataset.data_root={root}')
    for split in ('val', 'test'):
        options += [
            f'{split}_evaluator.det_metric.data_root={root}',
            f'{split}_evaluator.det_metric.ann_file='
            f'{root}nuscenes_infos_val.pkl',
        ]
    # LoadBEVMapMasks reads the map expansion from its own data_root
    for key, index in (('train_dataloader', 4), ('val_dataloader', 2),
                       ('test_dataloader', 2)):
        options.append(
            f'{key}.dataset.pipeline.{index}.data_root={root}')
    return options


def test_config_reuses_upstream_centerpoint():
    cfg = Config.fromfile(CFG)
    assert cfg.custom_imports.imports == ['mtl_fusion']
    model = cfg.model
    assert model.type == 'MultiTaskBEVFusion'
    # upstream CenterPoint components, unchanged in type
    assert model.pts_voxel_encoder.type == 'PillarFeatureNet'
    assert model.pts_middle_encoder.type == 'PointPillarsScatter'
    assert (model.bev_backbone.type, model.bev_neck.type) == ('SECOND',
                                                              'SECONDFPN')
    det = model.task_heads.det
    assert det.type == 'CenterHead' and len(det.tasks) == 6
    assert 'train_cfg' not in det and 'test_cfg' not in det
    assert model.train_cfg.det.code_weights[-2:] == [0.2, 0.2]
    assert model.task_io.det == dict(
        feat_format='levels', pred_field='pred_instances_3d',
        init_nested=True)
    assert model.task_heads.seg.type == 'FullerSegHead'
    # CenterHead task groups must be contiguous runs of the class order
    flat = [name for task in det.tasks for name in task['class_names']]
    assert flat == cfg.class_names


def test_upstream_center_head_gets_levels_and_its_cfgs(seed):
    from mmdet3d.models.dense_heads import CenterHead
    from mmdet3d.registry import MODELS
    cfg = Config.fromfile(CFG)
    model = MODELS.build(cfg.model)
    head = model.task_heads.det
    assert type(head) is CenterHead  # upstream class, no adapter
    # the detector handed over the det task's train_cfg / test_cfg
    assert head.train_cfg['max_objs'] == 100
    assert head.train_cfg['grid_size'] == [128, 128, 1]
    assert head.test_cfg['score_threshold'] == 0.0
    assert head.test_cfg['post_max_size'] == 30
    assert model.feat_formats == dict(det='levels', seg='tensor')
    assert model.pred_fields == dict(
        det='pred_instances_3d', seg='pred_bev_masks')
    feats = torch.randn(2, 192, 32, 32)
    from_tensor = head(model.head_inputs('det', feats))
    from_list = head(model.head_inputs('det', [feats]))
    assert len(from_tensor) == 6  # task groups
    for a, b in zip(from_tensor, from_list):
        assert a[0].keys() == b[0].keys()
        for key in a[0]:
            assert torch.equal(a[0][key], b[0][key])
    assert from_tensor[0][0]['heatmap'].shape == (2, 1, 32, 32)
    # the seg head gets one tensor from the same levels
    assert model.head_inputs('seg', [feats]) is feats
    with pytest.raises(TypeError, match="task 'det'"):
        model.head_inputs('det', 'not a feature')
    assert count_parameters(head) > 0


def test_heatmap_bias_initialised_inside_multi_task_model():
    from mmdet3d.registry import MODELS
    cfg = Config.fromfile(CFG)
    model = MODELS.build(cfg.model)
    model.init_weights()
    for task_head in model.task_heads.det.task_heads:
        bias = task_head.heatmap[-1].bias
        assert torch.allclose(bias, torch.full_like(bias, -2.19))
    # without task_io.det.init_nested, mmengine never reaches the
    # SeparateHeads in CenterHead's nn.ModuleList (upstream behaviour)
    cfg.model.task_io.det.init_nested = False
    model = MODELS.build(cfg.model)
    model.init_weights()
    bias = model.task_heads.det.task_heads[0].heatmap[-1].bias
    assert not torch.allclose(bias, torch.full_like(bias, -2.19))


@pytest.mark.slow
def test_train_then_test(synthetic_nuscenes, tmp_path):
    options = data_options(synthetic_nuscenes)
    work_dir = str(tmp_path / 'work')
    load_tool('train').main([
        CFG, '--work-dir', work_dir, '--cfg-options',
        'train_cfg.max_epochs=1', 'train_cfg.val_begin=2',
        'randomness.seed=0', *options
    ])
    ckpt = osp.join(work_dir, 'epoch_1.pth')
    assert osp.isfile(ckpt), glob.glob(osp.join(work_dir, '*'))
    state = torch.load(ckpt, map_location='cpu')
    keys = state['state_dict'].keys()
    assert any(k.startswith('task_heads.det.task_heads.') for k in keys)
    assert any(k.startswith('task_heads.seg.') for k in keys)
    # both tasks were trained: their losses are in the log
    logs = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    text = open(logs[0]).read()
    assert 'det.task0.loss_heatmap' in text and 'seg.loss_' in text

    metrics = load_tool('test').main(
        [CFG, ckpt, '--work-dir', work_dir, '--cfg-options', *options])
    assert 0.0 <= metrics[DET + 'mAP'] <= 1.0
    assert DET + 'NDS' in metrics
    miou = [v for k, v in metrics.items() if k.endswith('map/mean/iou@max')]
    assert len(miou) == 1 and 0.0 <= miou[0] <= 1.0
    drivable = [
        v for k, v in metrics.items()
        if k.endswith('map/drivable_area/iou@max')
    ]
    assert len(drivable) == 1 and 0.0 < drivable[0] <= 1.0
