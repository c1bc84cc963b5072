"""tools/benchmark.py on the tiny configs, and its bev_pool reference.

The tool runs in-process with one iteration (no thresholds are asserted:
timings on a shared CPU say nothing in a test); the test checks the JSON
structure, that every ratio is a positive finite number and that the
bev_pool methods agree with the brute-force loop.
"""
import copy
import importlib.util
import json
import math
import os.path as osp

import pytest
import torch

from mtl_fusion.ops import BEV_POOL_METHODS, bev_pool
from mtl_fusion import benchmark as bm

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CFG = osp.join(REPO, 'configs/fuller')
MTL = osp.join(CFG, 'fuller_tiny-fusion-mtl_1xb2-600i_synthetic-nus.py')
DET = osp.join(CFG, 'fuller_tiny-fusion-det_1xb2-600i_synthetic-nus.py')
SEG = osp.join(CFG, 'fuller_tiny-fusion-seg_1xb2-600i_synthetic-nus.py')
CALIB = osp.join(CFG,
                 'fuller_tiny-fusion-mtl-calib_1xb2-600i_synthetic-nus.py')


def _load_tool():
    spec = importlib.util.spec_from_file_location(
        'benchmark_tool', osp.join(REPO, 'tools/benchmark.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _positive_finite_leaves(obj, path=''):
    """Every number in a ratio dict (summaries included) is > 0 and finite."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key == 'n':
                continue
            _positive_finite_leaves(value, f'{path}.{key}')
    else:
        assert bm.is_positive_finite(obj), f'{path} = {obj!r}'


def test_reference_bev_pool_golden():
    feats = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]])
    # (batch, y, x) on a 2 x 3 grid; the last point is outside
    coords = torch.tensor([[0, 0, 1], [0, 0, 1], [1, 1, 2], [0, 2, 0]])
    out = bm.reference_bev_pool(feats, coords, 2, (2, 3))
    expected = torch.zeros(2, 2, 2, 3, dtype=torch.float64)
    expected[0, :, 0, 1] = torch.tensor([4.0, 6.0])
    expected[1, :, 1, 2] = torch.tensor([5.0, 6.0])
    assert torch.equal(out, expected)
    for method in BEV_POOL_METHODS:
        got = bev_pool(feats, coords, 2, (2, 3), method=method)
        assert torch.allclose(got.double(), expected), method


def test_bev_pool_methods_agree_with_brute_force():
    result = bm.check_bev_pool(num_points=300, channels=3,
                               grid_shape=(2, 5, 6), seed=3)
    assert set(result) == set(BEV_POOL_METHODS)
    for method, check in result.items():
        assert check['ok'], (method, check)


def test_summarize_and_ratios():
    stats = bm.summarize([4.0, 1.0, 3.0, 2.0])
    assert stats == dict(median=2.5, p25=1.75, p75=3.25, min=1.0, max=4.0,
                         n=4)
    assert bm.per_rep_ratio([2.0, 3.0], [[1.0, 1.0], [1.0, 2.0]]) == [
        1.0, 1.0
    ]


def test_random_batch_follows_the_config():
    cfg = bm.load_config(MTL)
    batch = bm.random_batch(cfg, 2, seed=0, num_points=4000)
    assert len(batch['data_samples']) == 2
    height, width = cfg.model.view_transform.image_size
    pc_range = cfg.point_cloud_range
    for points, img, sample in zip(batch['inputs']['points'],
                                   batch['inputs']['img'],
                                   batch['data_samples']):
        assert img.shape == (6, 3, height, width)
        assert points.shape[1] == 5 and 0 < len(points) <= 4000
        assert (points[:, 0] > pc_range[0]).all()
        assert (points[:, 1] < pc_range[4]).all()
        assert sample.gt_bev_masks.shape == (6, 200, 200)
        assert len(sample.gt_instances_3d.labels_3d) > 0
        assert sample.metainfo['cam2img'].shape == (6, 4, 4)


def test_bad_options_are_named():
    tool = _load_tool()
    with pytest.raises(SystemExit):
        tool.parse_args([MTL, '--sections', 'nonsense'])
    with pytest.raises(SystemExit):
        tool.parse_args([MTL, '--iters', '0'])
    with pytest.raises(FileNotFoundError, match='no_such.py'):
        bm.load_config('no_such.py')
    cfg = bm.load_config(MTL, data_root='/nonexistent/root')
    with pytest.raises(FileNotFoundError, match='/nonexistent/root'):
        bm.make_batches(cfg, 'synthetic', 1, 1)
    with pytest.raises(ValueError, match='--data'):
        bm.make_batches(cfg, 'lidar', 1, 1)


def test_synthetic_batches_come_from_the_dataloader(synthetic_nuscenes):
    cfg = bm.load_config(MTL, data_root=synthetic_nuscenes)
    (batch, ) = bm.make_batches(cfg, 'synthetic', 2, 1, split='train')
    assert len(batch['data_samples']) == 2
    assert batch['inputs']['img'][0].shape[:2] == (6, 3)
    assert 'gt_bev_masks' in batch['data_samples'][0]


def test_benchmark_tool_on_tiny_configs(tmp_path):
    # random inputs with few points keep this under a minute; the dataloader
    # path is covered by the test above
    tool = _load_tool()
    out = tmp_path / 'bench.json'
    tool.main([
        MTL, '--compare', DET, SEG, '--calib-config', CALIB, '--iters', '1',
        '--warmup', '0', '--batch-size', '1', '--data', 'random',
        '--num-points', '6000', '--threads', '1', '--out', str(out)
    ])
    result = json.loads(out.read_text())
    assert set(result) >= {'meta', 'inference', 'training', 'bev_pool',
                           'targets'}
    assert result['meta']['data'] == 'random'

    models = result['inference']['models']
    assert [m['role'] for m in models.values()] == ['multi', 'single',
                                                    'single']
    for res in models.values():
        assert res['params']['total'] > 0
        assert res['memory']['peak_bytes'] > res['memory']['resident_bytes']
        assert res['flops']['total'] > 0
        assert res['latency_s']['n'] == 1
        stages = res['stages']
        assert {'preprocess', 'camera backbone', 'view transform',
                'LiDAR encoder', 'fuser', 'decoder'} <= set(stages)
        assert stages['total']['seconds']['median'] > 0
    mtl = models[osp.splitext(osp.basename(MTL))[0]]
    assert {'head:det', 'head:seg'} <= set(mtl['stages'])
    # the sparse encoder is counted from spconv's rule book
    assert mtl['flops']['per_module']['pts_middle_encoder'] > 0
    ratios = result['inference']['ratios']
    assert set(ratios) == {'params', 'flops', 'latency', 'peak_memory'}
    _positive_finite_leaves(ratios)

    train = result['training']
    assert list(train['variants']) == list(bm.VARIANTS)
    assert train['calibration_origin'] == 'config'
    assert set(train['ratios']) == {'inter', 'intra', 'both'}
    _positive_finite_leaves(train['ratios'])
    both = train['variants']['both']['optim_wrapper']
    assert both['type'] == 'FullerOptimWrapper'
    assert both['calibration']['gate'] is not None
    assert train['variants']['inter']['optim_wrapper']['calibration'][
        'gate'] is None

    pool = result['bev_pool']
    assert all(c['ok'] for c in pool['correctness'].values())
    for method in BEV_POOL_METHODS:
        thr = pool['throughput'][method]['forward']['points_per_s']
        assert math.isfinite(thr['median']) and thr['median'] > 0
    assert 0 < pool['throughput']['input']['inside_fraction'] <= 1
    assert result['meta']['targets'] == 'fuller'
    assert [t['key'] for t in result['targets']] == [
        k for k, _, _ in bm.TARGETS]
    for target in result['targets']:
        assert bm.is_positive_finite(target['value'])


def test_models_with_other_sensors_get_their_own_batches(tmp_path):
    # a camera-only student against a camera + LiDAR teacher: the teacher's
    # batches come from its own config (points, voxels), the student's from
    # its own (images only), and each compared model gets its own ratios
    tool = _load_tool()
    student = osp.join(REPO, 'configs/simdistill',
                       'simdistill_tiny-cam-det_1xb2-600i_synthetic-nus.py')
    out = tmp_path / 'bench.json'
    result = tool.main([
        student, '--compare', DET, '--sections', 'inference', '--iters', '1',
        '--warmup', '0', '--batch-size', '1', '--data', 'random',
        '--num-points', '6000', '--threads', '1', '--no-flops', '--out',
        str(out)
    ])
    teacher = osp.splitext(osp.basename(DET))[0]
    assert result['meta']['own_batches'] == [teacher]
    models = result['inference']['models']
    assert 'LiDAR encoder' in models[teacher]['stages']
    assert 'LiDAR encoder' not in models[osp.splitext(
        osp.basename(student))[0]]['stages']
    each = result['inference']['ratios_each']
    assert list(each) == [teacher]
    assert each[teacher]['params'] == pytest.approx(
        result['inference']['ratios']['params'])
    _positive_finite_leaves(each)
    # a student against its teacher is not judged by FULLER's targets
    assert result['meta']['targets'] == 'none'
    assert result['targets'] == []
    assert json.loads(out.read_text())['targets'] == []


# --- TAG: the single-image multi-task model against its single-task models

TAG_TINY = osp.join(REPO, 'configs/_base_/models/tag_tiny.py')
# the variants of configs/tag, built from the model base (64 x 128 inputs)
TAG_VARIANTS = dict(
    tag='',
    mtl='model = dict(task_attention=None)\n',
    **{
        task: 'model = dict(task_attention=None, task_heads=dict(\n'
        f'    _delete_=True, {task}={{{{_base_.model.task_heads.{task}}}}}))\n'
        for task in ('det', 'seg', 'depth')
    })


def _tag_configs(folder) -> dict:
    paths = {}
    for name, body in TAG_VARIANTS.items():
        path = folder / f'tag_tiny-{name}.py'
        path.write_text(f'_base_ = [{TAG_TINY!r}]\nimg_scale = (128, 64)\n' +
                        body)
        paths[name] = str(path)
    return paths


def test_random_image_batch_follows_the_contract(tmp_path):
    cfg = bm.load_config(_tag_configs(tmp_path)['tag'])
    assert bm.is_image_model(cfg) and not bm.is_image_model(
        bm.load_config(MTL))
    # inference batches: images and metainfo only
    (batch, ) = bm.make_batches(cfg, 'random', 2, 1, split='test')
    assert [tuple(img.shape) for img in batch['inputs']['img']] == [
        (3, 64, 128)] * 2
    assert batch['inputs']['img'][0].dtype == torch.uint8
    meta = batch['data_samples'][0].metainfo
    assert meta['img_shape'] == meta['ori_shape'] == (64, 128)
    assert meta['cam2img'] == [[140.8, 0.0, 64.0], [0.0, 140.8, 32.0],
                               [0.0, 0.0, 1.0]]
    assert 'gt_instances_3d' not in batch['data_samples'][0]
    # training batches carry the contract's ground truth
    (batch, ) = bm.make_batches(cfg, 'random', 2, 1, split='train')
    sample = batch['data_samples'][1]
    inst = sample.gt_instances_3d
    assert inst.bboxes_3d.tensor.shape == (8, 7)
    assert sample.gt_sem_seg.sem_seg.shape == (1, 64, 128)
    assert sample.gt_depth_map.data.shape == (1, 64, 128)
    # the projected centre and its depth, by hand: K @ (x, y, z) / z of the
    # geometric centre (bottom centre lifted by half the height)
    k = torch.tensor(sample.metainfo['cam2img'])
    bottom = inst.bboxes_3d.tensor[:, :3].double()
    centre = bottom - torch.stack([torch.zeros(8), inst.bboxes_3d.tensor[
        :, 4] / 2, torch.zeros(8)], 1).double()
    uvz = centre @ k.T.double()
    assert torch.allclose(inst.depths.double(), centre[:, 2], atol=1e-4)
    assert torch.allclose(inst.centers_2d.double(), uvz[:, :2] / uvz[:, 2:],
                          atol=1e-3)
    assert ((inst.centers_2d >= 0) & (inst.centers_2d[:, :1] <= 128)).all()
    assert (inst.bboxes[:, 2:] >= inst.bboxes[:, :2]).all()
    # the real heads accept it: finite losses of the TAG model
    model = bm.build_model(cfg, torch.device('cpu'))
    data = model.data_preprocessor(copy.deepcopy(batch), training=True)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert losses and all(
        torch.isfinite(v).all() for v in losses.values()
        if isinstance(v, torch.Tensor))
    with pytest.raises(ValueError, match='--img-size'):
        bm.make_batches(bm.load_config(MTL), 'random', 1, 1,
                        img_size=(64, 128))


def test_tag_model_against_its_single_task_models(tmp_path):
    tool = _load_tool()
    paths = _tag_configs(tmp_path)
    name = {k: osp.splitext(osp.basename(p))[0] for k, p in paths.items()}
    result = tool.main([
        paths['tag'], '--compare', paths['det'], paths['seg'],
        paths['depth'], '--sections', 'inference', 'training', '--iters',
        '1', '--warmup', '0', '--data', 'random', '--threads', '1',
        '--out', str(tmp_path / 'tag.json')
    ])
    models = result['inference']['models']
    assert list(models) == [name[k] for k in ('tag', 'det', 'seg', 'depth')]
    tag = models[name['tag']]
    assert {'preprocess', 'image backbone', 'task attention', 'head:det',
            'head:seg', 'head:depth'} <= set(tag['stages'])
    assert 0 < tag['stages']['task attention']['share'] < 1
    # TAG's parameters: the model's total minus the model without TAG's
    for single in ('det', 'seg', 'depth'):
        stages = models[name[single]]['stages']
        assert 'task attention' not in stages
        assert {'image backbone', f'head:{single}'} <= set(stages)
    ratios = result['inference']['ratios']
    assert set(ratios) == {'params', 'flops', 'latency', 'peak_memory'}
    _positive_finite_leaves(ratios)
    _positive_finite_leaves(result['inference']['ratios_each'])
    # params of the sum by hand
    assert ratios['params'] == pytest.approx(
        tag['params']['total'] /
        sum(models[name[t]]['params']['total']
            for t in ('det', 'seg', 'depth')))
    assert 'skipped' in result['training']
    assert result['meta']['targets'] == 'tag'
    assert [t['key'] for t in result['targets']] == [
        k for k, _, _ in bm.TAG_TARGETS]
    for target in result['targets']:
        assert bm.is_positive_finite(target['value']), target
    by_key = {t['key']: t for t in result['targets']}
    assert by_key['inference.stages.task attention']['value'] == \
        tag['stages']['task attention']['share']
    assert by_key['inference.latency']['value'] == \
        ratios['latency']['median']

    # the multi-task model without TAG has no task attention stage, and
    # its task attention parameters are what the TAG model has in addition
    result = tool.main([
        paths['mtl'], '--compare', paths['seg'], '--sections', 'inference',
        '--iters', '1', '--warmup', '0', '--data', 'random', '--threads',
        '1', '--no-flops'
    ])
    mtl = result['inference']['models'][name['mtl']]
    assert 'task attention' not in mtl['stages']
    assert {'image backbone', 'head:det', 'head:seg',
            'head:depth'} <= set(mtl['stages'])
    assert tag['params']['total'] - mtl['params']['total'] == \
        tag['params']['task attention'] > 0
    assert result['meta']['targets'] == 'tag'
    assert result['targets'][0]['value'] is None  # not measured, not 'NO'
    assert result['targets'][0]['met'] is None


def test_targets_follow_the_kind_of_model():
    assert bm.choose_targets('auto', 'TAGMultiTaskDetector', True) == (
        'tag', bm.TAG_TARGETS)
    assert bm.choose_targets('auto', 'MultiTaskBEVFusion', False) == (
        'fuller', bm.TARGETS)
    assert bm.choose_targets('auto', 'MultiTaskBEVFusion', True) == (
        'fuller+task attention', bm.TARGETS + [bm.TASK_ATTENTION_TARGET])
    assert bm.choose_targets('auto', 'SimDistillStudent', False) == ('none',
                                                                     [])
    assert bm.choose_targets('auto', 'MultiTaskBEVFusion', False,
                             ['teacher']) == ('none', [])
    assert bm.choose_targets('fuller', 'TAGMultiTaskDetector', True) == (
        'fuller', bm.TARGETS)
    with pytest.raises(ValueError, match='--targets'):
        bm.choose_targets('paper', 'TAGMultiTaskDetector', True)
    # a TAG result is judged by the TAG targets only
    result = dict(inference=dict(
        ratios=dict(params=0.5, latency=dict(median=0.3)),
        models=dict(m=dict(role='multi', stages={
            'task attention': dict(share=0.01)}))))
    met = [(t['value'], t['met'])
           for t in bm.evaluate_targets(result, bm.TAG_TARGETS)]
    assert met == [(0.01, True), (0.3, True), (0.5, False)]
    assert bm.evaluate_targets(result, []) == []


def test_cityscapes3d_batches_need_the_data_root(tmp_path):
    # Cityscapes3DDataset has no ann_file: it indexes the folders of its root
    path = tmp_path / 'tag_cs3d.py'
    path.write_text(
        f'_base_ = [{TAG_TINY!r}]\n'
        "data_root = '/nonexistent/cityscapes3d/'\n"
        'test_dataloader = dict(batch_size=1, num_workers=0, dataset=dict(\n'
        "    type='Cityscapes3DDataset', data_root=data_root, split='val',\n"
        '    pipeline=[]))\n')
    cfg = bm.load_config(str(path))
    assert bm.default_source(cfg, 'test') == 'random'
    with pytest.raises(FileNotFoundError,
                       match=r"test_dataloader: data root "
                       r"'/nonexistent/cityscapes3d/' not found; generate "
                       r'it with tools/create_data.py synthetic-cityscapes3d'):
        bm.make_batches(cfg, 'synthetic', 1, 1, split='test')
    moved = bm.load_config(str(path), data_root=str(tmp_path))
    assert bm.default_source(moved, 'test') == 'synthetic'
    with pytest.raises(KeyError, match='train_dataloader'):
        bm.make_batches(moved, 'synthetic', 1, 1, split='train')
