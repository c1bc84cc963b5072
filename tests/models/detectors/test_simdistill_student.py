"""SimDistillStudent on CPU: camera-only, loss and predict, build checks."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from test_multi_task_bev_fusion import IMAGE_HW, _inputs, _sample

import mtl_fusion  # noqa: F401
from mmdet3d.registry import MODELS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
CONFIGS = osp.join(REPO, 'configs', 'simdistill')
DET = osp.join(CONFIGS, 'simdistill_tiny-cam-det_1xb2-600i_synthetic-nus.py')
MTL = osp.join(CONFIGS, 'simdistill_tiny-cam-mtl_1xb2-600i_synthetic-nus.py')
R50 = osp.join(CONFIGS, 'simdistill_r50-cam-det_8xb4-20e_nus.py')


def _student_cfg(path=DET):
    """The config's model at the test image size (fewer depth bins)."""
    cfg = Config.fromfile(path).model
    for key in ('view_transform', 'sim_view_transform'):
        vt = cfg[key]
        vt.image_size = list(IMAGE_HW)
        vt.feature_size = [IMAGE_HW[0] // 8, IMAGE_HW[1] // 8]
        vt.dbound = [1.0, 52.0, 3.0]
    cfg.task_heads.det.num_proposals = 16
    return cfg


def _build(path=DET):
    torch.manual_seed(0)
    model = MODELS.build(_student_cfg(path))
    model.init_weights()
    return model


def _data(model, batch=2, with_points=True, training=False):
    inputs = _inputs(list(range(batch)))
    if not with_points:
        del inputs['points']
    samples = [_sample(i) for i in range(batch)]
    return model.data_preprocessor(
        dict(inputs=inputs, data_samples=samples), training=training)


class _ImagesOnly(dict):
    """Inputs that fail on any read of points or voxels."""

    def _check(self, key):
        if key in ('points', 'voxels'):
            raise AssertionError(f'the student read inputs[{key!r}]')

    def __getitem__(self, key):
        self._check(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        self._check(key)
        return super().get(key, default)


def test_student_is_built_as_configured():
    model = _build()
    assert model.modalities == ('camera', 'sim_lidar')
    assert not model.with_lidar
    assert model.pts_voxel_encoder is None
    assert model.pts_middle_encoder is None
    assert list(model.fuser.modalities) == ['camera', 'sim_lidar']
    # the simulated-LiDAR BEV has the teacher's LiDAR BEV channels (tiny
    # fusion base: fuser in_channels [32, 128])
    teacher = Config.fromfile(
        osp.join(REPO, 'configs/_base_/models/fuller_bevfusion_tiny.py'))
    assert model.sim_bev_channels == teacher.model.fuser.in_channels[1] == 128
    assert model.sim_view_transform is not model.view_transform
    assert model.sim_view_transform.depthnet is not \
        model.view_transform.depthnet
    assert type(model.sim_compensation).__name__ == \
        'GeometryCompensationModule'
    assert model.data_preprocessor.voxel is False
    assert not hasattr(model.data_preprocessor, 'voxel_layer')


def test_loss_and_predict_golden_values():
    """Losses of the tiny student (init_weights, eval mode, fixed seed)."""
    model = _build().eval()
    with torch.no_grad():
        losses = model(**_data(model, training=True), mode='loss')
    expected = {
        'det.loss_heatmap': 23.821712,
        'det.loss_cls': 1.081506,
    }
    for key, value in expected.items():
        assert float(losses[key]) == pytest.approx(value, rel=1e-3), key
    # near-tied Hungarian assignment of untrained queries: range only
    assert 0 < float(losses['det.loss_bbox']) < 20
    with torch.no_grad():
        results = model(**_data(model), mode='predict')
    assert len(results) == 2
    pred = results[0].pred_instances_3d
    assert pred.bboxes_3d.tensor.shape[1] == 9
    assert len(pred.scores_3d) == len(pred.labels_3d) > 0
    top = float(pred.scores_3d.max())
    assert top == pytest.approx(0.041219, rel=1e-3)


def test_training_step_reaches_both_branches():
    model = _build()
    model.train()
    losses = model(**_data(model, training=True), mode='loss')
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    for prefix in ('img_backbone', 'view_transform', 'sim_view_transform',
                   'sim_compensation', 'sim_projection', 'fuser',
                   'bev_backbone', 'task_heads.det'):
        grads = [p.grad for n, p in model.named_parameters()
                 if n.startswith(prefix) and p.grad is not None]
        assert grads and any(g.abs().sum() > 0 for g in grads), prefix


def test_multi_task_student_loss_and_predict():
    model = _build(MTL).eval()
    with torch.no_grad():
        losses = model(**_data(model, training=True), mode='loss')
        results = model(**_data(model, batch=1), mode='predict')
    assert {k.split('.')[0] for k in losses} == {'det', 'seg'}
    expected = {
        'det.loss_heatmap': 23.845503,
        'det.loss_cls': 1.517148,
        'seg.loss_focal': 0.179944,
        'seg.loss_dice': 0.924655,
    }
    for key, value in expected.items():
        assert float(losses[key]) == pytest.approx(value, rel=1e-3), key
    assert results[0].pred_bev_masks.shape == (6, 200, 200)
    assert 'pred_instances_3d' in results[0]


def test_predictions_do_not_depend_on_points():
    model = _build().eval()
    with_points = _data(model)
    assert 'points' in with_points['inputs']
    assert 'voxels' not in with_points['inputs']  # no voxel layer
    without = _data(model, with_points=False)
    assert 'points' not in without['inputs']
    with torch.no_grad():
        a = model(**with_points, mode='predict')
        b = model(**without, mode='predict')
        # and it never even looks at them
        strict = dict(without)
        strict['inputs'] = _ImagesOnly(with_points['inputs'])
        c = model(**strict, mode='predict')
    for x, y, z in zip(a, b, c):
        pa, pb, pc = (r.pred_instances_3d for r in (x, y, z))
        assert torch.equal(pa.bboxes_3d.tensor, pb.bboxes_3d.tensor)
        assert torch.equal(pa.scores_3d, pb.scores_3d)
        assert torch.equal(pa.labels_3d, pb.labels_3d)
        assert torch.equal(pa.scores_3d, pc.scores_3d)


def test_extract_bev_exposes_the_distillation_features():
    model = _build().eval()
    data = _data(model)
    recorded = {}
    for name in ('view_transform', 'sim_view_transform', 'sim_compensation',
                 'sim_projection', 'fuser'):
        model.get_submodule(name).register_forward_hook(
            lambda mod, args, out, name=name: recorded.__setitem__(name, out))
    with torch.no_grad():
        out = model.extract_bev(data['inputs'], data['data_samples'])
    cam, sim = out['modality_feats']['camera'], out['modality_feats'][
        'sim_lidar']
    assert cam.shape == (2, 32, 64, 64)
    assert sim.shape == (2, 128, 64, 64)
    assert out['sim_lidar_raw'].shape == (2, 32, 64, 64)
    assert out['sim_lidar_compensated'].shape == (2, 32, 64, 64)
    assert out['fused'].shape == (2, 128, 64, 64)
    torch.testing.assert_close(recorded['view_transform'][0], cam)
    torch.testing.assert_close(recorded['sim_view_transform'][0],
                               out['sim_lidar_raw'])
    torch.testing.assert_close(recorded['sim_compensation'],
                               out['sim_lidar_compensated'])
    torch.testing.assert_close(recorded['sim_projection'], sim)
    torch.testing.assert_close(recorded['fuser'], out['fused'])
    # the compensation changes the map (deformable attention + residual)
    assert not torch.allclose(out['sim_lidar_raw'],
                              out['sim_lidar_compensated'])
    vt = model.sim_view_transform
    assert out['sim_depth'].shape == (2, 2, vt.D) + vt.feature_size
    assert out['depth'].shape == out['sim_depth'].shape
    assert not torch.allclose(out['depth'], out['sim_depth'])
    # dropping one BEV zero-fills it at the fuser
    model.set_drop_modality('sim_lidar')
    with torch.no_grad():
        dropped = model.extract_bev(data['inputs'], data['data_samples'])
    assert dropped['modality_feats']['sim_lidar'] is None
    assert dropped['sim_lidar_raw'] is None


@pytest.mark.parametrize('key', ['view_transform', 'sim_view_transform'])
def test_refuses_a_view_transform_that_reads_lidar(key):
    cfg = _student_cfg()
    cfg[key].type = 'DepthLSSViewTransform'
    with pytest.raises(ValueError,
                       match=rf'camera-only: {key} \(DepthLSSViewTransform\) '
                       r'reads LiDAR points \(uses_lidar=True\)'):
        MODELS.build(cfg)


@pytest.mark.parametrize('key', ['pts_voxel_encoder', 'pts_middle_encoder'])
def test_refuses_a_lidar_encoder(key):
    base = Config.fromfile(
        osp.join(REPO, 'configs/_base_/models/fuller_bevfusion_tiny.py'))
    cfg = _student_cfg()
    cfg[key] = base.model[key]
    with pytest.raises(ValueError,
                       match=rf'camera-only: {key} must be None, got a '
                       r'LiDAR encoder \(\w+\)'):
        MODELS.build(cfg)


def test_inconsistent_branches_fail_at_build_time():
    cfg = _student_cfg()
    cfg.sim_compensation.embed_dims = 64
    with pytest.raises(ValueError, match='embed_dims=64'):
        MODELS.build(cfg)
    cfg = _student_cfg()
    cfg.sim_view_transform.xbound = [-51.2, 51.2, 1.6]
    with pytest.raises(ValueError, match='grid_shape'):
        MODELS.build(cfg)
    cfg = _student_cfg()
    cfg.sim_bev_channels = 64
    with pytest.raises(ValueError, match="64 for 'sim_lidar'|128 channels"):
        MODELS.build(cfg)
    cfg = _student_cfg()
    cfg.fuser.modalities = ['camera', 'lidar']
    with pytest.raises(ValueError, match='sim_lidar'):
        MODELS.build(cfg)


def test_without_compensation_and_with_image_attention():
    cfg = _student_cfg()
    cfg.sim_compensation = None  # the "without GCM" ablation
    cfg.sim_img_attention = dict(
        type='GeometryCompensationModule', embed_dims=64,
        spatial_shape=[IMAGE_HW[0] // 8, IMAGE_HW[1] // 8], num_heads=8,
        num_points=4)
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    assert model.sim_compensation is None
    seen = {}

    def record(module, args, out):
        seen['shape'] = tuple(out.shape)

    model.sim_img_attention.register_forward_hook(record)
    losses = model(**_data(model, training=True), mode='loss')
    assert torch.isfinite(sum(v for k, v in losses.items() if 'loss' in k))
    assert seen['shape'] == (4, 64, IMAGE_HW[0] // 8, IMAGE_HW[1] // 8)


@pytest.mark.parametrize('path', [DET, MTL, R50])
def test_configs_load_no_points(path):
    cfg = Config.fromfile(path)
    assert cfg.model.type == 'SimDistillStudent'
    assert cfg.model.data_preprocessor.get('voxel', False) is False
    assert 'voxel_layer' not in cfg.model.data_preprocessor
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        types = [step['type'] for step in cfg[loader].dataset.pipeline]
        assert not [t for t in types if 'Points' in t], (loader, types)
        assert 'StrictLoadMultiViewImageFromFiles' in types
        (pack, ) = [s for s in cfg[loader].dataset.pipeline
                    if s['type'] == 'PackMultiTaskInputs']
        assert 'points' not in pack['keys']
        assert cfg[loader].dataset.modality.use_lidar is False


def test_r50_config_is_at_the_paper_settings():
    cfg = Config.fromfile(R50)
    for key in ('view_transform', 'sim_view_transform'):
        vt = cfg.model[key]
        assert vt.type == 'LSSViewTransform'
        assert vt.image_size == [256, 704]
        assert vt.dbound == [1.0, 60.0, 0.5]
        cells = (vt.xbound[1] - vt.xbound[0]) / vt.xbound[2] / vt.downsample
        assert round(cells) == 180
    det = cfg.model.task_heads.det
    grid = (det.point_cloud_range[3] - det.point_cloud_range[0]) / \
        det.voxel_size[0] / det.out_size_factor
    assert round(grid) == 180
    assert cfg.model.sim_compensation.spatial_shape == [180, 180]
    assert cfg.model.sim_bev_channels == 256  # the r50 LiDAR BEV
    assert cfg.optim_wrapper.optimizer.type == 'AdamW'
    assert cfg.optim_wrapper.optimizer.lr == 2e-4
    assert cfg.train_cfg.max_epochs == 20
