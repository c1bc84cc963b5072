"""tools/analysis_tools/count_params.py: per-component counts partition the
model's parameters; the head comparison runs."""
import importlib.util
import os.path as osp

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = osp.join(REPO, 'configs', 'fuller',
                'fuller_tiny-fusion-mtl_1xb2-600i_synthetic-nus.py')
TINY_DET = osp.join(REPO, 'configs', 'fuller',
                    'fuller_tiny-lidar-det_1xb2-600i_synthetic-nus.py')


@pytest.fixture(scope='module')
def tool():
    spec = importlib.util.spec_from_file_location(
        'mtl_tools_count_params',
        osp.join(REPO, 'tools', 'analysis_tools', 'count_params.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def manual_counts(model):
    """Sum ``named_parameters`` by the name's first component (task heads:
    first two)."""
    sums = {}
    for name, param in model.named_parameters():
        parts = name.split('.')
        key = '.'.join(parts[:2]) if parts[0] == 'task_heads' else parts[0]
        sums[key] = sums.get(key, 0) + param.numel()
    return sums


def test_counts_equal_manual_sum(tool):
    cfg = tool.load_cfg(TINY)
    model = tool.build_model(cfg)
    counts = tool.component_counts(model)
    manual = manual_counts(model)
    assert counts['total'] == sum(manual.values())
    nonzero = {k: v for k, v in counts.items() if v and k != 'total'}
    assert nonzero == manual
    for name in ('img_backbone', 'view_transform', 'pts_middle_encoder',
                 'fuser', 'bev_backbone', 'bev_neck', 'task_heads.det',
                 'task_heads.seg'):
        assert counts[name] > 0, name
    # --by-module: each component's children sum to the component
    deep = tool.component_counts(model, by_module=True)
    for name in manual:
        children = [v for k, v in deep.items() if k.startswith(name + '/')]
        assert sum(children) == deep[name], name


def test_heads_comparison(tool, capsys):
    reports = tool.main([TINY, TINY_DET, '--heads', '--by-module'])
    out = capsys.readouterr().out
    assert 'task_heads.seg' in out and 'ratio' in out
    mtl, det_only = (r['heads'] for r in reports)
    assert mtl['in_channels'] == 128
    # the tiny config's own Fuller heads are counted as configured
    counts = reports[0]['counts']
    assert mtl['fuller_det'] == counts['task_heads.det']
    assert mtl['fuller_seg'] == counts['task_heads.seg']
    assert (mtl['fuller_det_from'], mtl['fuller_seg_from']) == ('config',
                                                                'config')
    assert det_only['fuller_seg_from'] == 'defaults'
    assert mtl['fuller'] == mtl['fuller_det'] + mtl['fuller_seg']
    assert mtl['dense'] == mtl['center_head'] + mtl['dense_seg']
    assert mtl['ratio'] == pytest.approx(mtl['fuller'] / mtl['dense'])
    assert 0.0 < mtl['ratio'] < 1.0
