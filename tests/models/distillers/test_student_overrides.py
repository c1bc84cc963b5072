"""Student overrides: inside the distillation step the student's
``select_proposals`` returns the teacher's proposals (its k-th call the
teacher's k-th record); elsewhere the student's own method runs."""
import pytest
import torch
import torch.nn as nn
from mmdet3d.registry import MODELS
from mmdet3d.structures import Det3DDataSample, LiDARInstance3DBoxes
from mmengine.model import BaseModel
from mmengine.structures import InstanceData

from mtl_fusion.models.dense_heads import FullerDetHead

PCR = (-4.0, -4.0, -3.0, 4.0, 4.0, 1.0)  # 8 x 8 BEV cells
CELLS = 64
HEAD = dict(
    num_classes=2,
    num_proposals=6,
    num_heads=2,
    ffn_channels=16,
    head_conv=8,
    dropout=0.0,
    point_cloud_range=PCR,
    voxel_size=(0.5, 0.5, 0.2),
    out_size_factor=2)
SOURCE = 'task_heads.det.select_proposals'


@MODELS.register_module(force=True)
class ProposalToyNet(BaseModel):
    """A 1x1 conv 'backbone' and a FullerDetHead at ``task_heads.det``."""

    def __init__(self, channels: int = 4, hidden: int = 8, seed: int = 0,
                 num_proposals: int = 6, data_preprocessor=None,
                 init_cfg=None) -> None:
        super().__init__(
            data_preprocessor=data_preprocessor
            or dict(type='BaseDataPreprocessor'),
            init_cfg=init_cfg)
        self.backbone = nn.Conv2d(3, channels, 1)
        self.task_heads = nn.ModuleDict(
            dict(det=FullerDetHead(
                in_channels=channels,
                hidden_channels=hidden,
                **dict(HEAD, num_proposals=num_proposals))))
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)

    def feat(self, inputs):
        return self.backbone(inputs['imgs'])

    def forward(self, inputs, data_samples=None, mode='tensor'):
        head = self.task_heads['det']
        if mode == 'loss':
            losses = head.loss(self.feat(inputs), data_samples)
            return {f'det.{k}': v for k, v in losses.items()}
        if mode == 'predict':
            results = head.predict(self.feat(inputs), data_samples)
            for sample, result in zip(data_samples, results):
                sample.pred_instances_3d = result
            return data_samples
        return head(self.feat(inputs))


def _batch(seed=0, n=2):
    gen = torch.Generator().manual_seed(seed)
    samples = []
    for _ in range(n):
        sample = Det3DDataSample()
        gt = InstanceData()
        gt.bboxes_3d = LiDARInstance3DBoxes(
            torch.tensor([[1.0, -1.5, -1.0, 2.0, 1.0, 1.5, 0.3, 0.0, 0.0]]),
            box_dim=9)
        gt.labels_3d = torch.tensor([1])
        sample.gt_instances_3d = gt
        samples.append(sample)
    return dict(imgs=torch.randn(n, 3, 8, 8, generator=gen)), samples


def _recorders():
    return dict(
        proposals=dict(type='MethodOutputs', source=SOURCE),
        preds=dict(type='ModuleOutputs', source='task_heads.det'))


def _distiller_cfg(overrides='default', **kwargs):
    cfg = dict(
        type='ConfigurableDistiller',
        student_recorders=_recorders(),
        teacher_recorders=dict(lidar=_recorders()),
        loss_mappings=[
            dict(name='loss_box', loss=dict(type='QueryBoxDistillLoss'),
                 student='preds', teacher='lidar.preds')
        ])
    if overrides == 'default':
        overrides = dict(
            proposals=dict(source=SOURCE, teacher='lidar.proposals'))
    if overrides is not None:
        cfg['student_overrides'] = overrides
    cfg.update(kwargs)
    return cfg


def _models():
    student = ProposalToyNet(channels=4, hidden=8, seed=0).train()
    teacher = ProposalToyNet(channels=4, hidden=16, seed=1).eval()
    return student, teacher


def _own_proposals(student, inputs):
    """What the student's own head picks (outside any recording)."""
    with torch.no_grad():
        preds = student(inputs, mode='tensor')
    head = student.task_heads['det']
    return head.select_proposals(preds['dense_heatmap'].sigmoid())


def test_student_queries_sit_at_the_teacher_proposals():
    student, teacher = _models()
    distiller = MODELS.build(_distiller_cfg())
    distiller.prepare(student, dict(lidar=teacher))
    inputs, samples = _batch()
    own = _own_proposals(student, inputs)

    with torch.no_grad(), distiller.teacher_recording('lidar'):
        teacher(inputs, samples, mode='tensor')
    with distiller.student_recording():
        task = student(inputs, samples, mode='loss')
    t_top = distiller.teacher_recorders['lidar'].get('proposals')
    s_top = distiller.student_recorders.get('proposals')
    # the very tensor the teacher recorded: no copy, no detach
    assert s_top is t_top
    assert not torch.equal(own, t_top)  # the student alone differs
    t_preds = distiller.teacher_recorders['lidar'].get('preds')
    s_preds = distiller.student_recorders.get('preds')
    assert torch.equal(s_preds['query_labels'], t_preds['query_labels'])
    assert torch.equal(s_preds['query_labels'], t_top // CELLS)
    # the student's own heatmap read at the teacher's cells
    dense = s_preds['dense_heatmap'].detach().sigmoid().flatten(2)
    cells = (t_top % CELLS)[:, None].expand(-1, 2, -1)
    assert torch.equal(s_preds['query_heatmap_score'],
                       dense.gather(2, cells))
    # the student's boxes are those of queries at those cells
    head = student.task_heads['det']
    wrapper = head.__dict__['select_proposals']
    head.select_proposals = lambda heatmap: t_top
    try:
        by_hand = head(student.feat(inputs))
    finally:
        object.__setattr__(head, 'select_proposals', wrapper)
    for key in ('center', 'dim', 'cls_logits'):
        assert torch.equal(s_preds[key], by_hand[key]), key

    losses = distiller.compute_losses()  # check_matched passes
    loss = losses['distill.loss_box']
    assert torch.isfinite(loss) and loss > 0
    (loss + sum(task.values())).backward()
    assert head.prediction_heads.center[-1].weight.grad is not None
    assert all(p.grad is None for p in teacher.parameters())


def test_kth_call_gets_the_teachers_kth_record():
    student, teacher = _models()
    distiller = MODELS.build(_distiller_cfg())
    distiller.prepare(student, dict(lidar=teacher))
    (a, _), (b, _) = _batch(seed=1), _batch(seed=2)
    with torch.no_grad(), distiller.teacher_recording('lidar'):
        teacher(a)
        teacher(b)
    with distiller.student_recording():
        sa, sb = student(a), student(b)
    t_records = distiller.teacher_recorders['lidar'].get('proposals', 'all')
    assert len(t_records) == 2 and not torch.equal(*t_records)
    assert torch.equal(sa['query_labels'], t_records[0] // CELLS)
    assert torch.equal(sb['query_labels'], t_records[1] // CELLS)
    # the count restarts with every recorded step
    with distiller.student_recording():
        again = student(a)
    assert torch.equal(again['query_labels'], t_records[0] // CELLS)


def test_outside_the_step_the_student_uses_its_own_proposals():
    student, teacher = _models()
    distiller = MODELS.build(_distiller_cfg())
    distiller.prepare(student, dict(lidar=teacher))
    inputs, samples = _batch()
    with torch.no_grad(), distiller.teacher_recording('lidar'):
        teacher(inputs)
    t_top = distiller.teacher_recorders['lidar'].get('proposals')
    # teacher records are present, but no student_recording: own method
    student.eval()
    with torch.no_grad():
        preds = student(inputs)
    own = student.task_heads['det'].select_proposals(
        preds['dense_heatmap'].sigmoid())
    assert torch.equal(preds['query_labels'], own // CELLS)
    assert not torch.equal(preds['query_labels'], t_top // CELLS)


def test_algorithm_training_step_and_predict(tmp_path):
    ckpt = str(tmp_path / 'teacher.pth')
    teacher_cfg = dict(type='ProposalToyNet', channels=4, hidden=16, seed=1)
    torch.save(dict(meta=dict(),
                    state_dict=MODELS.build(teacher_cfg).state_dict()), ckpt)

    def algorithm(distiller):
        return MODELS.build(
            dict(type='DistillationAlgorithm',
                 student=dict(type='ProposalToyNet', seed=0),
                 teachers=dict(lidar=dict(config=teacher_cfg,
                                          checkpoint=ckpt)),
                 distiller=distiller))

    inputs, samples = _batch()
    model = algorithm(_distiller_cfg()).train()
    losses = model(inputs, samples, mode='loss')
    assert {'det.loss_cls', 'det.loss_bbox', 'det.loss_heatmap',
            'distill.loss_box'} <= set(losses)
    assert torch.isfinite(losses['distill.loss_box'])
    # without the override the queries are not one-to-one
    plain = algorithm(_distiller_cfg(overrides=None)).train()
    with pytest.raises(ValueError, match='student_overrides'):
        plain(inputs, samples, mode='loss')

    # tensor and predict modes: the student's own proposals, no teacher
    model.eval()
    with torch.no_grad():
        preds = model(inputs, samples, mode='tensor')
        own = model.student.task_heads['det'].select_proposals(
            preds['dense_heatmap'].sigmoid())
        assert torch.equal(preds['query_labels'], own // CELLS)
        out = model(inputs, samples, mode='predict')
    assert len(out) == 2 and 'pred_instances_3d' in out[0]


@pytest.mark.parametrize('overrides, error, match', [
    (dict(p=dict(source=SOURCE, teacher='lidar.nope')), KeyError,
     r"student_overrides\['p'\].*no recorder 'nope'"),
    (dict(p=dict(source=SOURCE, teacher='other.proposals')), KeyError,
     r"student_overrides\['p'\].*teacher 'other'"),
    (dict(p=dict(source=SOURCE)), KeyError,
     r"student_overrides\['p'\]: missing 'teacher'"),
    (dict(p=dict(teacher='lidar.proposals')), KeyError,
     r"student_overrides\['p'\]: missing 'source'"),
    (dict(p=dict(source=SOURCE, teacher='lidar.proposals', x=1)), KeyError,
     r"student_overrides\['p'\]: unknown keys \['x'\]"),
    (dict(p=dict(source=SOURCE,
                 teacher=dict(recorder='lidar.proposals', call=1))),
     ValueError, r"student_overrides\['p'\].*no \"call\""),
    (dict(p=dict(source=SOURCE, teacher='lidar.proposals'),
          q=dict(source=SOURCE, teacher='lidar.proposals')), ValueError,
     r"student_overrides\['q'\].*already overridden by 'p'"),
    (dict(p=dict(source='task_heads.det.', teacher='lidar.proposals')),
     ValueError, r"student_overrides\['p'\]: source must be"),
])
def test_build_errors_name_the_override(overrides, error, match):
    with pytest.raises(error, match=match):
        MODELS.build(_distiller_cfg(overrides=overrides))


@pytest.mark.parametrize('source, match', [
    ('task_heads.nope.select_proposals',
     r"student override 'p'.*no submodule 'task_heads.nope'"),
    ('task_heads.det.select_nothing',
     r"student override 'p'.*no method 'select_nothing'"),
])
def test_prepare_errors_name_the_override(source, match):
    student, teacher = _models()
    distiller = MODELS.build(_distiller_cfg(
        overrides=dict(p=dict(source=source, teacher='lidar.proposals'))))
    with pytest.raises(AttributeError, match=match):
        distiller.prepare(student, dict(lidar=teacher))


def test_missing_teacher_records_at_call_time():
    student, teacher = _models()
    distiller = MODELS.build(_distiller_cfg())
    distiller.prepare(student, dict(lidar=teacher))
    inputs, _ = _batch()
    # the teacher was not run in this step
    with pytest.raises(RuntimeError,
                       match=r"student override 'proposals': call 0"):
        with distiller.student_recording():
            student(inputs)
    # the teacher recorded one call, the student makes two
    with torch.no_grad(), distiller.teacher_recording('lidar'):
        teacher(inputs)
    with pytest.raises(RuntimeError,
                       match=r"student override 'proposals': call 1.*1 "
                       r'record'):
        with distiller.student_recording():
            student(inputs)
            student(inputs)
    # the override is off again after the failed block
    student(inputs)


def test_teacher_with_other_k_is_rejected_by_the_head():
    student = ProposalToyNet(seed=0).train()
    teacher = ProposalToyNet(hidden=16, seed=1, num_proposals=4).eval()
    distiller = MODELS.build(_distiller_cfg())
    distiller.prepare(student, dict(lidar=teacher))
    inputs, _ = _batch()
    with torch.no_grad(), distiller.teacher_recording('lidar'):
        teacher(inputs)
    with pytest.raises(ValueError,
                       match=r'select_proposals returned indices of shape '
                       r'\(2, 4\); expected .*\(2, 6\)'):
        with distiller.student_recording():
            student(inputs)
