"""mtl_fusion.analysis.multi_task_table: Delta_T per seed against the hand
formula (and the metric's own Delta_T), FLOPs against a hand count."""
import math

import pytest
import torch
from torch import nn

from mtl_fusion.analysis.multi_task_table import (delta_t_per_seed,
                                                  image_model_flops)
from mtl_fusion.evaluation.metrics.cityscapes3d_metric import \
    Cityscapes3DMetric

BASELINES = dict(DS='single-det', mIoU='single-seg', RMSE='single-depth')


def _runs():
    return {
        (0, 'single-det'): dict(DS=0.4),
        (0, 'single-seg'): dict(mIoU=0.6),
        (0, 'single-depth'): dict(RMSE=5.0),
        (0, 'mtl'): dict(DS=0.3, mIoU=0.66, RMSE=5.5),
        (1, 'single-det'): dict(DS=0.0),
        (1, 'single-seg'): dict(mIoU=0.5),
        (1, 'single-depth'): dict(RMSE=4.0),
        (1, 'mtl'): dict(DS=0.1, mIoU=float('nan'), RMSE=3.0),
        (2, 'mtl'): dict(DS=0.1, mIoU=0.5, RMSE=3.0),
    }


def test_delta_t_against_the_hand_formula():
    runs = _runs()
    reasons = delta_t_per_seed(runs, BASELINES, ('RMSE', ))
    # 100/3 * ((0.3-0.4)/0.4 + (0.66-0.6)/0.6 - (5.5-5)/5)
    #   = 100/3 * (-0.25 + 0.1 - 0.1)
    mtl = runs[(0, 'mtl')]
    assert mtl['delta_t'] == pytest.approx(-25.0 / 3)
    assert (mtl['rel_DS'], mtl['rel_mIoU'], mtl['rel_RMSE']) == (
        pytest.approx(-25.0), pytest.approx(10.0), pytest.approx(-10.0))
    # what Cityscapes3DMetric reports with these baselines
    metric = Cityscapes3DMetric(baselines=dict(det=0.4, seg=0.6, depth=5.0))
    reported = metric._delta_t(
        {'det/DS': 0.3, 'seg/mIoU': 0.66, 'depth/RMSE': 5.5}, None)
    assert reported == pytest.approx(mtl['delta_t'])
    # seed 1: baseline DS 0 and a NaN mIoU; seed 2: no single-task runs
    assert runs[(1, 'mtl')]['delta_t'] is None
    assert runs[(1, 'mtl')]['rel_RMSE'] == pytest.approx(25.0)
    assert runs[(1, 'mtl')]['rel_DS'] is None
    assert 'single-det has DS = 0' in reasons[(1, 'mtl')]
    assert "no finite mIoU (nan)" in reasons[(1, 'mtl')]
    assert runs[(2, 'mtl')]['delta_t'] is None
    assert "no run 'single-seg' of seed 2" in reasons[(2, 'mtl')]
    assert set(reasons) == {(1, 'mtl'), (2, 'mtl')}
    for key, result in runs.items():
        if key[1].startswith('single'):
            assert result['delta_t'] is None and result['rel_DS'] is None


def test_delta_t_rejects_bad_settings():
    with pytest.raises(ValueError, match='no baseline_rows'):
        delta_t_per_seed({}, {})
    with pytest.raises(ValueError, match="lower_is_better \\['AbsRel'\\]"):
        delta_t_per_seed({}, BASELINES, ('AbsRel', ))


class _TwoHeadModel(nn.Module):
    """A stand-in image multi-task model: conv backbone, two conv heads."""

    def __init__(self):
        super().__init__()
        self.backbone = nn.Conv2d(3, 4, 3, stride=2, padding=1, bias=False)
        self.task_heads = nn.ModuleDict(dict(
            a=nn.Conv2d(4, 5, 1, bias=False),
            b=nn.Conv2d(4, 2, 3, padding=1, bias=False)))

    def extract_feat(self, inputs, samples):
        return [self.backbone(inputs['imgs'])]

    def head_inputs(self, task, feats):
        return feats[0]


def test_flops_against_a_hand_count():
    model = _TwoHeadModel().train()
    out = image_model_flops(model, (16, 32))
    # multiply-adds: H_out * W_out * C_out * C_in * k * k
    backbone = 8 * 16 * 4 * 3 * 9
    head_a = 8 * 16 * 5 * 4
    head_b = 8 * 16 * 2 * 4 * 9
    assert out['total'] == backbone + head_a + head_b
    assert out['per_module'] == {
        'backbone': backbone,
        'task_heads': head_a + head_b,
        'task_heads.a': head_a,
        'task_heads.b': head_b
    }
    assert model.training  # the mode is restored
    with pytest.raises(TypeError, match='no .extract_feat.'):
        image_model_flops(nn.Conv2d(3, 3, 1), (8, 8))
    with pytest.raises(ValueError, match='img_shape'):
        image_model_flops(model, (0, 8))
    assert not math.isnan(out['total'])
    assert torch.is_grad_enabled()
