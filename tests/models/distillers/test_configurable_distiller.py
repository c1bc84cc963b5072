"""The distiller turns its loss mappings into ``distill.*`` losses equal to
the losses computed by hand on the same records."""
import os.path as osp
import sys

import pytest
import torch
import torch.nn.functional as F
from mmdet3d.registry import MODELS

sys.path.insert(0, osp.join(osp.dirname(osp.dirname(__file__)), 'algorithms'))
from kd_toy import KDToyNet, make_batch  # noqa: E402

from mtl_fusion.models.losses import HeatmapQualityFocalLoss  # noqa: E402


def _distiller(**overrides):
    cfg = dict(
        type='ConfigurableDistiller',
        student_recorders=dict(
            feat=dict(type='ModuleOutputs', source='neck'),
            heatmap=dict(type='ModuleOutputs', source='head',
                         index='heatmap'),
            reg=dict(type='ModuleOutputs', source='head', index='reg'),
            gt=dict(type='MethodOutputs', source='head.get_target')),
        teacher_recorders=dict(
            big=dict(
                feat=dict(type='ModuleOutputs', source='neck'),
                heatmap=dict(type='ModuleOutputs', source='head',
                             index='heatmap'),
                reg=dict(type='ModuleOutputs', source='head',
                         index='reg'))),
        connectors=dict(feat=dict(type='ConvConnector', in_channels=4,
                                  out_channels=8)),
        loss_mappings=[
            dict(name='loss_feat', loss=dict(type='FeatureMSELoss'),
                 student='feat', connector='feat', teacher='big.feat',
                 inputs=dict(mask=dict(recorder='student.gt',
                                       call='stack'))),
            dict(name='loss_heatmap',
                 loss=dict(type='HeatmapQualityFocalLoss'),
                 student='heatmap', teacher='heatmap', weight=2.0),
            dict(name='loss_reg', loss=dict(type='GTPositionRegressionLoss'),
                 student='reg', teacher='big.reg',
                 inputs=dict(positions=dict(recorder='student.gt',
                                            call='stack'))),
        ])
    cfg.update(overrides)
    return MODELS.build(cfg)


def _run(distiller, student, teacher, batch):
    inputs, samples = batch
    with torch.no_grad(), distiller.teacher_recording('big'):
        teacher(inputs, samples, mode='tensor')
    with distiller.student_recording():
        losses = student(inputs, samples, mode='loss')
    return losses, distiller.compute_losses()


def test_losses_equal_hand_computation():
    student, teacher = KDToyNet(channels=4), KDToyNet(channels=8, seed=1)
    distiller = _distiller()
    distiller.prepare(student, dict(big=teacher))
    batch = make_batch(2)
    task, losses = _run(distiller, student, teacher, batch)
    assert sorted(losses) == [
        'distill.loss_feat', 'distill.loss_heatmap', 'distill.loss_reg'
    ]
    assert sorted(task) == ['det.loss_heatmap', 'det.loss_reg']

    inputs, samples = batch
    with torch.no_grad():
        t_feat = teacher.extract_feat(inputs)
        t_out = teacher.head(t_feat)
    s_feat = student.extract_feat(inputs)
    s_out = student.head(s_feat)
    gt = torch.stack([s.heatmap for s in samples])
    mask = gt.amax(1, keepdim=True).expand(-1, 8, -1, -1)
    adapted = distiller.connectors['feat'](s_feat)
    feat = (((adapted - t_feat)**2) * mask).sum() / mask.sum()
    torch.testing.assert_close(losses['distill.loss_feat'], feat)
    torch.testing.assert_close(
        losses['distill.loss_heatmap'],
        2.0 * HeatmapQualityFocalLoss()(s_out['heatmap'], t_out['heatmap']))
    centres = gt.amax(1) == 1  # (B, Y, X)
    diff = (s_out['reg'] - t_out['reg']).abs().permute(0, 2, 3, 1)[centres]
    torch.testing.assert_close(losses['distill.loss_reg'], diff.mean())
    # the records are dropped after the losses
    assert all(not r.data
               for r in distiller.student_recorders.recorders.values())
    # connectors train with the student, the teacher gets no gradient
    sum(losses.values()).backward()
    assert distiller.connectors['feat'].conv.weight.grad is not None
    assert student.neck.weight.grad is not None
    assert all(p.grad is None for p in teacher.parameters())


def test_factor_and_weight_scale_the_loss():
    student, teacher = KDToyNet(channels=4), KDToyNet(channels=8, seed=1)
    distiller = _distiller()
    distiller.prepare(student, dict(big=teacher))
    batch = make_batch(2)
    _, base = _run(distiller, student, teacher, batch)
    distiller.set_loss_factor(0.25, ['loss_heatmap'])
    _, scaled = _run(distiller, student, teacher, batch)
    torch.testing.assert_close(scaled['distill.loss_heatmap'],
                               0.25 * base['distill.loss_heatmap'])
    torch.testing.assert_close(scaled['distill.loss_feat'],
                               base['distill.loss_feat'])
    with pytest.raises(KeyError, match="'loss_nope'"):
        distiller.set_loss_factor(1.0, ['loss_nope'])


@pytest.mark.parametrize('mapping, error, match', [
    (dict(name='feat', loss=dict(type='FeatureMSELoss'), student='feat',
          teacher='big.feat'), ValueError, 'containing "loss"'),
    (dict(name='loss_x', loss=dict(type='FeatureMSELoss'), student='nope',
          teacher='big.feat'), KeyError, "no recorder 'nope'"),
    (dict(name='loss_x', loss=dict(type='FeatureMSELoss'), student='feat',
          teacher='other.feat'), KeyError, "teacher 'other'"),
    (dict(name='loss_x', loss=dict(type='FeatureMSELoss'), student='feat',
          teacher='big.feat', connector='missing'), KeyError,
     "connector 'missing'"),
    (dict(name='loss_x', loss=dict(type='FeatureMSELoss'), student='feat',
          teacher='big.feat', extra=1), KeyError, 'unknown keys'),
    (dict(name='loss_x', loss=dict(type='FeatureMSELoss'), student='feat',
          teacher='big.feat', inputs=dict(mask='gt')), ValueError,
     "'student.<recorder>'"),
])
def test_config_errors_name_the_mapping(mapping, error, match):
    with pytest.raises(error, match=match):
        _distiller(loss_mappings=[mapping])


def test_prepare_checks_teacher_names():
    distiller = _distiller()
    with pytest.raises(KeyError, match=r"\['big'\]"):
        distiller.prepare(KDToyNet(channels=4), dict(other=KDToyNet()))


def test_feature_levels_are_averaged():
    """List records (one per call, like feature levels) are distilled
    pairwise and averaged."""
    student, teacher = KDToyNet(channels=8), KDToyNet(channels=8, seed=1)
    distiller = MODELS.build(
        dict(type='ConfigurableDistiller',
             student_recorders=dict(
                 hm=dict(type='MethodOutputs', source='head.forward',
                         index='heatmap')),
             teacher_recorders=dict(
                 t=dict(hm=dict(type='MethodOutputs', source='head.forward',
                                index='heatmap'))),
             loss_mappings=[
                 dict(name='loss_levels', loss=dict(type='FeatureMSELoss'),
                      student=dict(recorder='hm', call='all'),
                      teacher=dict(recorder='hm', call='all'))
             ]))
    distiller.prepare(student, dict(t=teacher))
    a, _ = make_batch(2, seed=0)
    b, _ = make_batch(2, seed=1)
    with torch.no_grad(), distiller.teacher_recording('t'):
        ta, tb = teacher(a)['heatmap'], teacher(b)['heatmap']
    with distiller.student_recording():
        sa, sb = student(a)['heatmap'], student(b)['heatmap']
    loss = distiller.compute_losses()['distill.loss_levels']
    expected = (F.mse_loss(sa, ta) + F.mse_loss(sb, tb)) / 2
    torch.testing.assert_close(loss, expected)
