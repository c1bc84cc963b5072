"""Distillation loops on a real Runner: the student is evaluated, each
teacher once under its own prefix; resume re-loads the teachers from their
checkpoints."""
import copy
import os.path as osp
import sys

import torch
from mmengine.runner import Runner

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
sys.path.insert(0, osp.join(REPO, 'tests', 'models', 'algorithms'))
from kd_toy import KDToyNet, algorithm_cfg, save_teacher  # noqa: E402

from mtl_fusion.engine import runner as _loops  # noqa: E402,F401


def _runner(work_dir, ckpt, max_iters=4, evaluate_teachers=True,
            resume=False, load_from=None, model=None):
    data = dict(
        dataset=dict(type='KDToyDataset', n=6, seed=3),
        sampler=dict(type='DefaultSampler', shuffle=False),
        collate_fn=dict(type='pseudo_collate'),
        batch_size=2,
        num_workers=0)
    return Runner(
        model=model or algorithm_cfg(ckpt),
        work_dir=work_dir,
        train_dataloader=dict(
            data, dataset=dict(type='KDToyDataset', n=8),
            sampler=dict(type='DefaultSampler', shuffle=True, seed=0)),
        val_dataloader=data,
        test_dataloader=data,
        val_evaluator=dict(type='KDToyMetric'),
        test_evaluator=dict(type='KDToyMetric'),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.05,
                                          momentum=0.9)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters, val_interval=2),
        val_cfg=dict(type='DistillValLoop',
                     evaluate_teachers=evaluate_teachers),
        test_cfg=dict(type='DistillTestLoop',
                      evaluate_teachers=evaluate_teachers),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook',
                                           interval=2, by_epoch=False)),
        randomness=dict(seed=0),
        resume=resume,
        load_from=load_from,
        default_scope='mmdet3d')


def _teacher_mae(ckpt, runner):
    """The teacher alone, evaluated by hand on the val data."""
    teacher = KDToyNet(channels=8, seed=1)
    teacher.load_state_dict(torch.load(ckpt, weights_only=True)['state_dict'])
    teacher.eval()
    errors = []
    with torch.no_grad():
        for batch in runner.val_dataloader:
            for sample in teacher.val_step(copy.deepcopy(batch)):
                errors.append(
                    float((sample.pred_heatmap - sample.heatmap).abs().mean()))
    return sum(errors) / len(errors)


def test_val_evaluates_student_and_teachers_once(tmp_path):
    ckpt = str(tmp_path / 'teacher.pth')
    save_teacher(ckpt)
    runner = _runner(str(tmp_path / 'work'), ckpt)
    seen = []
    evaluate = runner.val_loop.evaluator.evaluate

    def spy(size):
        metrics = evaluate(size)
        seen.append(dict(metrics))
        return metrics

    runner.val_loop.evaluator.evaluate = spy
    runner.train()
    # validations at iterations 2 and 4; the teacher only at the first
    assert len(seen) == 3  # teacher, student @2, student @4
    first = runner.val_loop.teacher_metrics
    assert set(first) == {'teacher/big/toy/mae'}
    assert abs(first['teacher/big/toy/mae'] -
               _teacher_mae(ckpt, runner)) < 1e-6
    scalars = runner.message_hub.log_scalars
    assert 'val/teacher/big/toy/mae' in scalars
    assert 'val/toy/mae' in scalars
    # the student is evaluated, not the teacher
    assert abs(seen[-1]['toy/mae'] - first['teacher/big/toy/mae']) > 1e-6

    metrics = runner.test()
    assert set(metrics) == {'toy/mae', 'teacher/big/toy/mae'}
    assert abs(metrics['toy/mae'] - seen[-1]['toy/mae']) < 1e-6


def test_resume_reloads_teachers_and_matches_continuous_run(tmp_path):
    ckpt = str(tmp_path / 'teacher.pth')
    save_teacher(ckpt)
    full = _runner(str(tmp_path / 'full'), ckpt, max_iters=4,
                   evaluate_teachers=False)
    full.train()
    saved = torch.load(osp.join(str(tmp_path / 'full'), 'iter_2.pth'),
                       weights_only=True)
    assert not any(k.startswith('teachers.') for k in saved['state_dict'])

    first = _runner(str(tmp_path / 'split'), ckpt, max_iters=2,
                    evaluate_teachers=False)
    first.train()
    resumed = _runner(str(tmp_path / 'split'), ckpt, max_iters=4,
                      evaluate_teachers=False, resume=True)
    resumed.train()
    assert resumed.iter == full.iter == 4
    for (name, a), b in zip(full.model.state_dict().items(),
                            resumed.model.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)
    teacher = torch.load(ckpt, weights_only=True)['state_dict']
    for key, value in resumed.model.teachers['big'].state_dict().items():
        assert torch.equal(value, teacher[key]), key
