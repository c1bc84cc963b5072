"""SimDistill's distillation configs on the real tiny models.

The full tiny config (configs/simdistill/simdistill_tiny-cam-det-kd_*)
distils the camera-only SimDistill student from the tiny FULLER fusion
detector. One training step on two synthetic-world samples is checked loss
by loss against values computed here, by hand, from tensors recorded by
forward hooks of the test's own (IMD, CMD, MMD-F, MMD-P with the student's
queries at the teacher's proposals); then the frozen teacher, the camera-only
student (same predictions with and without points), the ablation configs
(exactly their losses), the multi-task variant (+ mask distillation) and the
nuScenes config (the teacher on the student's 180 x 180 grid).
"""
import copy
import glob
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmdet3d.registry import DATASETS, MODELS
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.optim import OptimWrapper

from mtl_fusion.models.dense_heads import FullerDetHead
from mtl_fusion.utils import replace_data_root

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
CONFIGS = osp.join(REPO, 'configs', 'simdistill')
SUFFIX = '_1xb2-600i_synthetic-nus.py'
KD = osp.join(CONFIGS, 'simdistill_tiny-cam-det-kd' + SUFFIX)
MTL_KD = osp.join(CONFIGS, 'simdistill_tiny-cam-mtl-kd' + SUFFIX)
R50_KD = osp.join(CONFIGS, 'simdistill_r50-cam-det-kd_8xb4-20e_nus.py')
KD_CONFIGS = sorted(glob.glob(osp.join(CONFIGS, '*-kd*.py')))

FULL = ['loss_imd', 'loss_cmd', 'loss_mmd_f', 'loss_mmd_p_heatmap',
        'loss_mmd_p_box']
ABLATIONS = {
    'simdistill_tiny-cam-det-kd-imd' + SUFFIX: FULL[:1],
    'simdistill_tiny-cam-det-kd-imd-cmd' + SUFFIX: FULL[:2],
    'simdistill_tiny-cam-det-kd-imd-cmd-mmdf' + SUFFIX: FULL[:3],
    'simdistill_tiny-cam-det-kd' + SUFFIX: FULL,
    'simdistill_tiny-cam-det-kd-nogcm' + SUFFIX: FULL,
}
# the public code's weights; MMD-P's 0.25 on each of its two terms
WEIGHTS = dict(loss_imd=1.0, loss_cmd=100.0, loss_mmd_f=1.0,
               loss_mmd_p_heatmap=0.25, loss_mmd_p_box=0.25)
POINT_STEPS = ('StrictLoadPointsFromFile', 'StrictLoadPointsFromMultiSweeps',
               'PointsRangeFilter', 'PointShuffle')


def _cfg(path, root, ckpt=None):
    cfg = Config.fromfile(path)
    replace_data_root(cfg, root)
    if ckpt is not None:
        cfg.model.teachers.fuller.checkpoint = ckpt
    return cfg


def _teacher_ckpt(cfg, path):
    """A freshly built teacher of ``cfg``, saved to ``path``."""
    torch.manual_seed(1)
    teacher = MODELS.build(Config.fromfile(cfg.model.teachers.fuller.config)
                           .model)
    teacher.init_weights()
    torch.save(dict(state_dict=teacher.state_dict()), path)
    return path


def _build(cfg):
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


@pytest.fixture(scope='module')
def kd(synthetic_nuscenes, tmp_path_factory):
    """The full tiny config, its model (teacher from a tmp checkpoint) and
    two training samples through its train pipeline."""
    cfg = _cfg(KD, synthetic_nuscenes)
    ckpt = _teacher_ckpt(
        cfg, str(tmp_path_factory.mktemp('simdistill') / 'teacher.pth'))
    cfg.model.teachers.fuller.checkpoint = ckpt
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    batch = pseudo_collate([dataset[0], dataset[1]])
    return dict(cfg=cfg, ckpt=ckpt, batch=batch, model=_build(cfg))


class _Hooks:
    """Forward outputs (and inputs) of named submodules."""

    def __init__(self, model, names):
        self.out, self.inp, self._handles = {}, {}, []
        for name in names:
            self._handles.append(model.get_submodule(
                name).register_forward_hook(self._hook(name)))

    def _hook(self, name):

        def hook(module, args, out):  # returns None: the output is kept
            self.out[name] = out
            self.inp[name] = args

        return hook

    def remove(self):
        for handle in self._handles:
            handle.remove()


def _record_proposals(head, store, key):
    """Record the (B, K) proposal indices that ``head.forward`` uses."""
    check = head._check_proposals

    def wrapper(top_idx, heatmap):
        store.setdefault(key, []).append(top_idx)
        return check(top_idx, heatmap)

    object.__setattr__(head, '_check_proposals', wrapper)
    return lambda: object.__delattr__(head, '_check_proposals')


def _gt_mask(head, data_samples):
    """(B, K, Y, X) GT Gaussian heatmaps, drawn by the class's method."""
    return torch.stack([
        FullerDetHead.get_heatmap_target(
            head, s.gt_instances_3d.bboxes_3d,
            s.gt_instances_3d.labels_3d.long()) for s in data_samples
    ])


def test_training_step_losses_by_hand(kd):
    model = kd['model']
    student, teacher = model.student, model.teachers['fuller']
    s_hooks = _Hooks(student, ['view_transform', 'sim_projection', 'fuser',
                               'task_heads.det'])
    t_hooks = _Hooks(teacher, ['view_transform', 'pts_middle_encoder',
                               'fuser', 'task_heads.det'])
    c_hooks = _Hooks(model.distiller.connectors, ['cmd'])
    proposals = {}
    undo = [_record_proposals(student.task_heads.det, proposals, 'student'),
            _record_proposals(teacher.task_heads.det, proposals, 'teacher')]
    model.train()
    try:
        data = model.data_preprocessor(copy.deepcopy(kd['batch']),
                                       training=True)
        # the student's preprocessor voxelized the points for the teacher
        assert 'voxels' in data['inputs'] and 'points' in data['inputs']
        losses = model(**data, mode='loss')
    finally:
        for hooks in (s_hooks, t_hooks, c_hooks):
            hooks.remove()
        for fn in undo:
            fn()
    s, t = s_hooks.out, t_hooks.out

    # exactly the student's det losses plus the four SimDistill losses
    assert set(losses) == {
        'det.loss_heatmap', 'det.loss_cls', 'det.loss_bbox',
        'det.labelled_samples'
    } | {f'distill.{name}' for name in FULL}
    assert all(bool(torch.isfinite(v).all()) for v in losses.values())
    assert losses['det.loss_heatmap'].requires_grad
    # the weights of the config (no schedule hook here: factor 1)
    assert {m['name']: m['weight']
            for m in kd['cfg'].model.distiller.loss_mappings} == WEIGHTS
    assert model.distiller.loss_factors == {name: 1.0 for name in FULL}

    # the teacher ran without autograd
    for out in (t['view_transform'][0], t['pts_middle_encoder'], t['fuser'],
                t['task_heads.det']['dense_heatmap']):
        assert not out.requires_grad

    # IMD: camera BEV (view transform output 0) against camera BEV, x1
    s_cam, t_cam = s['view_transform'][0], t['view_transform'][0]
    assert s_cam.shape == t_cam.shape == (2, 32, 64, 64)
    imd = ((s_cam - t_cam)**2).mean()
    torch.testing.assert_close(losses['distill.loss_imd'], 1.0 * imd)

    # CMD: conv-BN-ReLU(sim-LiDAR BEV) against the teacher's sparse encoder
    # output, under the student's GT heatmap (max over classes), x100
    sim, lidar = s['sim_projection'], t['pts_middle_encoder']
    assert sim.shape == lidar.shape == (2, 128, 64, 64)
    assert c_hooks.inp['cmd'][0] is sim
    projected = c_hooks.out['cmd']
    assert projected.shape == lidar.shape
    # the teacher's LiDAR BEV is the fuser's LiDAR input
    mask = _gt_mask(student.task_heads.det,
                    data['data_samples']).amax(1, keepdim=True)
    assert mask.shape == (2, 1, 64, 64) and float(mask.max()) == 1.0
    m = mask.expand_as(projected)
    cmd = (m * (projected - lidar)**2).sum() / m.sum()
    torch.testing.assert_close(losses['distill.loss_cmd'], 100.0 * cmd)

    # MMD-F: fuser outputs, x1
    assert s['fuser'].shape == t['fuser'].shape == (2, 128, 64, 64)
    mmd_f = ((s['fuser'] - t['fuser'])**2).mean()
    torch.testing.assert_close(losses['distill.loss_mmd_f'], 1.0 * mmd_f)

    # MMD-P heatmap: quality focal loss, teacher soft targets = one sigmoid
    s_hm = s['task_heads.det']['dense_heatmap']
    t_hm = t['task_heads.det']['dense_heatmap']
    p, q = s_hm.sigmoid(), t_hm.sigmoid()
    bce = -(q * torch.log(p) + (1 - q) * torch.log(1 - p))
    qfl = (bce * (q - p).abs()**2).mean()
    torch.testing.assert_close(
        losses['distill.loss_mmd_p_heatmap'], 0.25 * qfl, rtol=1e-4,
        atol=1e-7)

    # MMD-P boxes: the student's queries are the teacher's proposals
    (s_idx, ), (t_idx, ) = proposals['student'], proposals['teacher']
    assert t_idx.shape == (2, 64)
    assert torch.equal(s_idx, t_idx)
    sp, tp = s['task_heads.det'], t['task_heads.det']
    assert torch.equal(sp['query_labels'], tp['query_labels'])
    keys = ('center', 'height', 'dim', 'rot', 'vel')
    s_codes = torch.cat([sp[k] for k in keys], 1)
    t_codes = torch.cat([tp[k] for k in keys], 1)
    assert s_codes.shape == (2, 10, 64)
    w = tp['cls_logits'].sigmoid().amax(1)  # (B, K) teacher confidence
    box = ((s_codes - t_codes).abs().sum(1) * w).sum() / (10 * w.sum())
    torch.testing.assert_close(losses['distill.loss_mmd_p_box'], 0.25 * box)

    # gradients: the distillation losses reach the student's branches and
    # the connector, never the teacher
    total = sum(v for k, v in losses.items() if 'loss' in k)
    total.backward()
    for prefix in ('view_transform', 'sim_view_transform',
                   'sim_compensation', 'sim_projection', 'fuser'):
        assert any(p.grad is not None and bool(p.grad.abs().sum() > 0)
                   for n, p in student.named_parameters()
                   if n.startswith(prefix)), prefix
    assert all(p.grad is not None
               for p in model.distiller.connectors.parameters())
    assert all(p.grad is None for p in teacher.parameters())
    model.zero_grad(set_to_none=True)


def test_predict_uses_the_students_own_proposals(kd, synthetic_nuscenes):
    model = kd['model'].eval()
    head = model.student.task_heads.det
    proposals = {}
    hooks = _Hooks(head, [''])
    undo = _record_proposals(head, proposals, 'student')
    try:
        data = model.data_preprocessor(copy.deepcopy(kd['batch']),
                                       training=False)
        with torch.no_grad():
            model(**data, mode='predict')
            model.teachers['fuller'](**data, mode='tensor')
    finally:
        hooks.remove()
        undo()
    (own, ), heatmap = proposals['student'], hooks.out['']['dense_heatmap']
    torch.testing.assert_close(
        own, FullerDetHead.select_proposals(head, heatmap.sigmoid()),
        rtol=0, atol=0)
    # not the teacher's (the teacher has its own heatmap)
    teacher_idx = FullerDetHead.select_proposals(
        model.teachers['fuller'].task_heads.det,
        model.teachers['fuller'](**data, mode='tensor')['det']
        ['dense_heatmap'].sigmoid())
    assert not torch.equal(own, teacher_idx)


def test_teacher_is_frozen_and_unchanged_by_a_train_step(kd):
    model = kd['model']
    teacher = model.teachers['fuller']
    model.train()
    assert not teacher.training
    assert all(not mod.training for mod in teacher.modules())
    assert all(not p.requires_grad for p in teacher.parameters())
    assert model.student.training
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    student_before = {k: v.clone()
                      for k, v in model.student.state_dict().items()}
    optim = OptimWrapper(torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=1e-3))
    log = model.train_step(copy.deepcopy(kd['batch']), optim_wrapper=optim)
    assert {f'distill.{n}' for n in FULL} <= set(log)
    for key, value in teacher.state_dict().items():
        assert torch.equal(value, before[key]), key  # BN stats included
    assert any(not torch.equal(v, student_before[k])
               for k, v in model.student.state_dict().items())
    # teacher weights stay out of the algorithm's checkpoints
    assert not any(k.startswith('teachers.') for k in model.state_dict())
    model.zero_grad(set_to_none=True)


def test_student_predicts_the_same_with_and_without_points(
        kd, synthetic_nuscenes):
    """The kd val data (camera-only) and the fusion test pipeline on the
    same sample: same images, points only in the second."""
    cfg, model = kd['cfg'], kd['model'].eval()
    camera_only = DATASETS.build(cfg.val_dataloader.dataset)
    fusion_cfg = copy.deepcopy(cfg.val_dataloader.dataset)
    fusion_cfg.pipeline = cfg.test_pipeline
    fusion_cfg.modality = dict(use_lidar=True, use_camera=True)
    fusion = DATASETS.build(fusion_cfg)
    a, b = camera_only[0], fusion[0]
    assert 'points' not in a['inputs'] and 'points' in b['inputs']
    assert torch.equal(a['inputs']['img'], b['inputs']['img'])
    with torch.no_grad():
        without = model.val_step(pseudo_collate([a]))
        data = model.data_preprocessor(pseudo_collate([b]), training=False)
        assert 'voxels' in data['inputs']  # the teacher's input, unused
        with_points = model(**data, mode='predict')
    pa = without[0].pred_instances_3d
    pb = with_points[0].pred_instances_3d
    assert len(pa.scores_3d) > 0
    assert torch.equal(pa.bboxes_3d.tensor, pb.bboxes_3d.tensor)
    assert torch.equal(pa.scores_3d, pb.scores_3d)
    assert torch.equal(pa.labels_3d, pb.labels_3d)


def test_fusion_teacher_needs_points_the_val_data_lacks(kd):
    """Why the kd configs set evaluate_teachers=False: the loops evaluate a
    teacher on their own (camera-only) dataloader."""
    cfg = kd['cfg']
    assert cfg.val_cfg == dict(type='DistillValLoop', evaluate_teachers=False)
    assert cfg.test_cfg == dict(type='DistillTestLoop',
                                evaluate_teachers=False)
    sample = DATASETS.build(cfg.val_dataloader.dataset)[0]
    with torch.no_grad(), pytest.raises(KeyError, match='voxels'):
        kd['model'].teachers['fuller'].val_step(pseudo_collate([sample]))


@pytest.mark.parametrize('name', sorted(ABLATIONS))
def test_ablation_config_has_exactly_its_losses(name, kd,
                                                synthetic_nuscenes):
    expected = ABLATIONS[name]
    cfg = _cfg(osp.join(CONFIGS, name), synthetic_nuscenes, kd['ckpt'])
    model = kd['model'] if name == osp.basename(KD) else _build(cfg)
    assert model.distiller.loss_names == expected
    assert {m['name']: m['weight']
            for m in cfg.model.distiller.loss_mappings} == {
                k: WEIGHTS[k] for k in expected}
    # the queries follow the teacher's proposals only with MMD-P
    assert bool(model.distiller._overrides) == ('loss_mmd_p_box' in expected)
    assert (len(model.distiller.connectors) == 1) == ('loss_cmd' in expected)
    gcm = model.student.sim_compensation
    assert (gcm is None) == name.startswith('simdistill_tiny-cam-det-kd-nogcm')
    assert [h['type'] for h in cfg.custom_hooks] == [
        'NonFiniteGuardHook', 'DistillLossWeightScheduleHook']
    if model is kd['model']:
        return  # its step is checked above
    model.train()
    losses = model.loss(*_preprocessed(model, kd['batch']))
    assert sorted(k for k in losses if k.startswith('distill.')) == sorted(
        f'distill.{n}' for n in expected)
    assert all(bool(torch.isfinite(v).all()) for v in losses.values())


def _preprocessed(model, batch):
    data = model.data_preprocessor(copy.deepcopy(batch), training=True)
    return data['inputs'], data['data_samples']


def test_multi_task_kd_adds_mask_distillation(synthetic_nuscenes,
                                              tmp_path):
    cfg = _cfg(MTL_KD, synthetic_nuscenes)
    cfg.model.teachers.fuller.checkpoint = _teacher_ckpt(
        cfg, str(tmp_path / 'mtl_teacher.pth'))
    teacher_cfg = Config.fromfile(cfg.model.teachers.fuller.config)
    assert teacher_cfg.optim_wrapper.type == 'FullerOptimWrapper'
    assert set(teacher_cfg.model.task_heads) == {'det', 'seg'}
    model = _build(cfg)
    assert set(model.student.task_heads) == {'det', 'seg'}
    assert model.distiller.loss_names == FULL + ['loss_mask']
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    batch = pseudo_collate([dataset[0], dataset[1]])
    s_hooks = _Hooks(model.student, ['task_heads.seg'])
    t_hooks = _Hooks(model.teachers['fuller'], ['task_heads.seg'])
    model.train()
    try:
        losses = model.loss(*_preprocessed(model, batch))
    finally:
        s_hooks.remove()
        t_hooks.remove()
    assert {k.split('.')[0] for k in losses} == {'det', 'seg', 'distill'}
    s, t = s_hooks.out['task_heads.seg'], t_hooks.out['task_heads.seg']
    assert s.shape == t.shape and s.shape[:2] == (2, 6)
    mask = F.binary_cross_entropy(s.sigmoid(), t.sigmoid())
    torch.testing.assert_close(losses['distill.loss_mask'], 1.0 * mask,
                               rtol=1e-4, atol=1e-6)


def _det_distiller(cfg):
    d = cfg.model.distiller
    return dict(
        mappings=[m for m in d.loss_mappings if m['name'] in FULL],
        student={k: v for k, v in d.student_recorders.items()
                 if k != 'seg_logits'},
        teacher={k: v for k, v in d.teacher_recorders.fuller.items()
                 if k != 'seg_logits'},
        overrides=d.student_overrides,
        connector={k: v for k, v in d.connectors.cmd.items()
                   if k not in ('in_channels', 'out_channels')})


def test_kd_configs_share_the_det_distillation():
    tiny = _det_distiller(Config.fromfile(KD))
    for path in (MTL_KD, R50_KD):
        assert _det_distiller(Config.fromfile(path)) == tiny, path


@pytest.mark.parametrize('path', KD_CONFIGS,
                         ids=[osp.basename(p) for p in KD_CONFIGS])
def test_kd_config_points_for_the_teacher_in_training_only(path):
    cfg = Config.fromfile(path)
    student, teacher = cfg.model.student, Config.fromfile(
        cfg.model.teachers.fuller.config).model
    # the student's own preprocessor plus the teacher's voxelization
    pre = student.data_preprocessor
    assert pre.voxel is True
    assert pre.voxel_type == teacher.data_preprocessor.voxel_type
    assert pre.voxel_layer == teacher.data_preprocessor.voxel_layer
    for key in ('type', 'mean', 'std', 'bgr_to_rgb', 'pad_size_divisor'):
        assert pre[key] == teacher.data_preprocessor[key], key
    assert student.type == 'SimDistillStudent'
    assert student.get('pts_middle_encoder') is None
    train = [s['type'] for s in cfg.train_dataloader.dataset.pipeline]
    assert 'StrictLoadPointsFromFile' in train
    assert cfg.train_dataloader.dataset.modality.use_lidar is True
    for loader in ('val_dataloader', 'test_dataloader'):
        dataset = cfg[loader].dataset
        steps = [s['type'] for s in dataset.pipeline]
        assert not set(steps) & set(POINT_STEPS), (loader, steps)
        (pack, ) = [s for s in dataset.pipeline
                    if s['type'] == 'PackMultiTaskInputs']
        assert 'points' not in pack['keys'] and 'img' in pack['keys']
        assert dataset.modality == dict(use_lidar=False, use_camera=True)


def test_baseline_is_camera_only():
    base = Config.fromfile(osp.join(
        REPO, 'configs', 'distill', 'fuller_tiny-cam-det' + SUFFIX))
    # the distillation example's baseline loads and voxelizes the points
    assert 'StrictLoadPointsFromFile' in [
        s['type'] for s in base.train_dataloader.dataset.pipeline]
    cfg = Config.fromfile(
        osp.join(CONFIGS, 'simdistill_tiny-cam-baseline' + SUFFIX))
    assert cfg.model.to_dict() == dict(
        base.model.to_dict(), data_preprocessor=cfg.model.data_preprocessor)
    assert 'voxel_layer' not in cfg.model.data_preprocessor
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        steps = [s['type'] for s in cfg[loader].dataset.pipeline]
        assert not set(steps) & set(POINT_STEPS), (loader, steps)
        assert cfg[loader].dataset.modality.use_lidar is False


def test_r50_teacher_and_student_bevs_match():
    """IMD, CMD and MMD-F need equal shapes; the r50 teacher is FULLER's
    fusion detector on the student's 180 x 180 grid (FULLER's own r50 is
    128 x 128)."""
    fuller = Config.fromfile(osp.join(
        REPO, 'configs', 'fuller', 'fuller_r50-fusion-det_8xb4-20e_nus.py'))
    cfg = Config.fromfile(R50_KD)
    model = MODELS.build(cfg.model).eval()  # checkpoint not needed to build
    student, teacher = model.student, model.teachers['fuller']
    assert student.task_heads.det.grid_size == \
        teacher.task_heads.det.grid_size == (180, 180)
    assert MODELS.build(fuller.model.task_heads.det).grid_size == (128, 128)
    assert student.task_heads.det.num_proposals == \
        teacher.task_heads.det.num_proposals == 200
    with torch.no_grad():
        enc = teacher.pts_middle_encoder
        nz, ny, nx = enc.sparse_shape
        coors = torch.tensor([[0, 0, 0, 0], [0, nz - 1, ny - 1, nx - 1]],
                             dtype=torch.int32)
        lidar = enc(torch.zeros(2, enc.in_channels), coors, 1)
        cams = []
        for vt in (student.view_transform, teacher.view_transform):
            gz, gy, gx = vt.grid_shape
            cams.append(vt.downsample_layers(
                torch.zeros(1, vt.out_channels * gz, gy, gx)))
        sim = student.sim_projection(torch.zeros(
            1, student.sim_view_transform.bev_channels, 180, 180))
        s_fused = student.fuser({'camera': cams[0], 'sim_lidar': sim})
        t_fused = teacher.fuser({'camera': cams[1], 'lidar': lidar})
    assert cams[0].shape == cams[1].shape == (1, 80, 180, 180)
    assert sim.shape == lidar.shape == (1, 256, 180, 180)
    assert s_fused.shape == t_fused.shape == (1, 256, 180, 180)
