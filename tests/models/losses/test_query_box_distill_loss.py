"""QueryBoxDistillLoss: a hand-computed example, the weightings, the
matching checks and the gradient path."""
import math

import pytest
import torch
from mmdet3d.registry import MODELS

from mtl_fusion.models.losses import QueryBoxDistillLoss


def _pair():
    """One sample, K = 2 queries, 2 classes; center and height only."""
    student = dict(
        center=torch.tensor([[[1.0, 2.0], [3.0, 4.0]]], requires_grad=True),
        height=torch.tensor([[[0.5, -1.0]]], requires_grad=True),
        cls_logits=torch.zeros(1, 2, 2),
        query_labels=torch.tensor([[0, 1]]))
    teacher = dict(
        center=torch.tensor([[[0.0, 2.0], [3.0, 1.0]]]),
        height=torch.tensor([[[0.0, 1.0]]]),
        # query 0: max sigmoid 0.5; query 1: sigmoid(log 3) = 0.75
        cls_logits=torch.tensor([[[0.0, math.log(3.0)], [-5.0, -2.0]]]),
        query_labels=torch.tensor([[0, 1]]))
    return student, teacher


KEYS = ('center', 'height')


def test_hand_example():
    student, teacher = _pair()
    # |s - t| per query over (x, y, z): query 0 (1, 0, 0.5) -> 1.5,
    # query 1 (0, 3, 2) -> 5
    plain = QueryBoxDistillLoss(keys=KEYS, score_weighting='none')
    torch.testing.assert_close(plain(student, teacher),
                               torch.tensor(6.5 / 6))
    # (0.5 * 1.5 + 0.75 * 5) / (3 * (0.5 + 0.75)) = 4.5 / 3.75
    weighted = QueryBoxDistillLoss(keys=KEYS)
    torch.testing.assert_close(weighted(student, teacher), torch.tensor(1.2))
    # code weights (2, 1, 1): query 0 -> 2.5; (1.25 + 3.75) / 3.75, x 0.5
    scaled = MODELS.build(
        dict(type='QueryBoxDistillLoss', keys=KEYS, code_weights=[2, 1, 1],
             loss_weight=0.5))
    loss = scaled(student, teacher)
    torch.testing.assert_close(loss, torch.tensor(0.5 * 5.0 / 3.75))
    # d loss / d center_x of query 1 (s = t: sign 0) and query 0 (+1):
    # 0.5 * 2 * w_0 / 3.75 = 0.5 * 2 * 0.5 / 3.75
    loss.backward()
    torch.testing.assert_close(student['center'].grad[0, 0],
                               torch.tensor([0.5 / 3.75, 0.0]))
    torch.testing.assert_close(
        student['height'].grad[0, 0],
        torch.tensor([0.5 * 0.5, -0.5 * 0.75]) / 3.75)


def test_default_keys_on_head_shaped_outputs(seed):
    batch, classes, queries = 2, 3, 4
    shapes = dict(center=2, height=1, dim=3, rot=2, vel=2)

    def preds():
        out = {k: torch.randn(batch, c, queries) for k, c in shapes.items()}
        out['cls_logits'] = torch.randn(batch, classes, queries)
        out['query_labels'] = torch.zeros(batch, queries, dtype=torch.long)
        return out

    student, teacher = preds(), preds()
    code_weights = [1.0] * 8 + [0.2, 0.2]
    loss = QueryBoxDistillLoss(code_weights=code_weights)(student, teacher)
    s = torch.cat([student[k] for k in shapes], 1)
    t = torch.cat([teacher[k] for k in shapes], 1)
    diff = (s - t).abs() * torch.tensor(code_weights)[None, :, None]
    w = teacher['cls_logits'].sigmoid().amax(1)
    expected = (diff.sum(1) * w).sum() / (10 * w.sum())
    torch.testing.assert_close(loss, expected)
    # equal teacher scores: the plain mean
    teacher['cls_logits'] = torch.zeros(batch, classes, queries)
    torch.testing.assert_close(
        QueryBoxDistillLoss(code_weights=code_weights)(student, teacher),
        diff.mean())
    # identical boxes: zero
    same = dict(student)
    torch.testing.assert_close(QueryBoxDistillLoss()(same, student),
                               torch.tensor(0.0))


def test_teacher_gets_no_gradient():
    student, teacher = _pair()
    teacher = {k: v.clone().requires_grad_(v.is_floating_point())
               for k, v in teacher.items()}
    QueryBoxDistillLoss(keys=KEYS)(student, teacher).backward()
    assert student['center'].grad is not None
    assert all(v.grad is None for v in teacher.values())


def test_unmatched_queries_are_errors():
    student, teacher = _pair()
    teacher['query_labels'] = torch.tensor([[1, 1]])
    with pytest.raises(ValueError, match='student_overrides') as info:
        QueryBoxDistillLoss(keys=KEYS)(student, teacher)
    assert info.match('query_labels')
    assert info.match('select_proposals')
    # check_matched=False trusts the caller
    QueryBoxDistillLoss(keys=KEYS, check_matched=False)(student, teacher)

    student, teacher = _pair()
    teacher = {k: v[..., :1] for k, v in teacher.items()}
    with pytest.raises(ValueError, match='2 queries and the teacher 1'):
        QueryBoxDistillLoss(keys=KEYS)(student, teacher)


def test_config_errors():
    student, teacher = _pair()
    with pytest.raises(KeyError, match=r"student predictions have no "
                       r"\['vel'\]"):
        QueryBoxDistillLoss(keys=('center', 'vel'))(student, teacher)
    del teacher['height']
    with pytest.raises(KeyError, match=r"teacher predictions have no "
                       r"\['height'\]"):
        QueryBoxDistillLoss(keys=KEYS)(student, teacher)
    student, teacher = _pair()
    with pytest.raises(ValueError, match='2 code_weights for 3'):
        QueryBoxDistillLoss(keys=KEYS, code_weights=[1, 1])(student, teacher)
    with pytest.raises(ValueError, match='score_weighting'):
        QueryBoxDistillLoss(score_weighting='student')
    with pytest.raises(ValueError, match='keys'):
        QueryBoxDistillLoss(keys='center')
    del student['query_labels']
    with pytest.raises(KeyError, match='query_labels'):
        QueryBoxDistillLoss(keys=KEYS)(student, teacher)
