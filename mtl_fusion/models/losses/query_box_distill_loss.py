"""Box distillation between the queries of two query heads."""
from typing import Dict, Optional, Sequence

import torch
from mmdet3d.registry import MODELS
from torch import Tensor, nn

__all__ = ['QueryBoxDistillLoss']

_SCORE_WEIGHTINGS = ('teacher', 'none')


@MODELS.register_module()
class QueryBoxDistillLoss(nn.Module):
    """L1 between the per-query box codes of a student and a teacher.

    Both inputs are outputs of a query head's ``forward`` such as
    :class:`~mtl_fusion.models.dense_heads.FullerDetHead`: dicts with the
    regression branches ``center`` (B, 2, K), ``height`` (B, 1, K), ``dim``
    (B, 3, K), ``rot`` (B, 2, K), optionally ``vel`` (B, 2, K), plus
    ``cls_logits`` (B, num_classes, K) and ``query_labels`` (B, K). The
    branches named by ``keys`` are concatenated into (B, C, K) codes and

    ``loss = loss_weight * sum_{b,k,c} w_bk v_c |s_bck - t_bck|
    / (C * sum_{b,k} w_bk)``,

    with per-channel weights ``v_c`` (``code_weights``, 1 by default) and
    per-query weights ``w_bk``: the teacher's best class probability
    ``max_c sigmoid(cls_logits)`` with ``score_weighting='teacher'`` (the
    boxes the teacher is sure of count most), 1 with ``'none'`` (a plain
    mean). Classes are not distilled here (heatmap distillation does it).

    The loss compares query k of the student with query k of the teacher,
    so both must sit at the same proposals; configure the distiller's
    ``student_overrides`` so that the student's ``select_proposals``
    returns the teacher's. With ``check_matched`` the number of queries and
    the ``query_labels`` must agree.

    Args:
        keys (Sequence[str]): Regression branches, in code order.
            Defaults to ``('center', 'height', 'dim', 'rot', 'vel')``.
        code_weights (Sequence[float], optional): ``v_c``, one per channel
            of the concatenated codes (10 with the default keys). Defaults
            to None (all 1).
        score_weighting (str): ``'teacher'`` or ``'none'``.
            Defaults to 'teacher'.
        check_matched (bool): Raise a ValueError when the student's and
            the teacher's queries are not the same proposals.
            Defaults to True.
        loss_weight (float): Weight of the loss. Defaults to 1.0.
    """

    def __init__(self,
                 keys: Sequence[str] = ('center', 'height', 'dim', 'rot',
                                        'vel'),
                 code_weights: Optional[Sequence[float]] = None,
                 score_weighting: str = 'teacher',
                 check_matched: bool = True,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if isinstance(keys, str) or not keys:
            raise ValueError('QueryBoxDistillLoss: keys must be a non-empty '
                             f'sequence of branch names, got {keys!r}')
        if score_weighting not in _SCORE_WEIGHTINGS:
            raise ValueError('QueryBoxDistillLoss: score_weighting must be '
                             f'one of {_SCORE_WEIGHTINGS}, got '
                             f'{score_weighting!r}')
        self.keys = tuple(keys)
        self.code_weights = None if code_weights is None else [
            float(w) for w in code_weights
        ]
        self.score_weighting = score_weighting
        self.check_matched = check_matched
        self.loss_weight = loss_weight

    def _codes(self, preds: Dict[str, Tensor], side: str) -> Tensor:
        if not isinstance(preds, dict):
            raise TypeError(f'QueryBoxDistillLoss: the {side} record must '
                            'be the dict of a query head forward, got '
                            f'{type(preds).__name__}')
        missing = [key for key in self.keys if key not in preds]
        if missing:
            raise KeyError(f'QueryBoxDistillLoss: the {side} predictions '
                           f'have no {missing}; they have {sorted(preds)} '
                           '(set keys to the branches both heads predict)')
        return torch.cat([preds[key] for key in self.keys], dim=1)

    def _check_matched(self, student: Dict[str, Tensor],
                       teacher: Dict[str, Tensor], s_codes: Tensor,
                       t_codes: Tensor) -> None:
        hint = ('the student and teacher queries are not one-to-one; '
                'configure the distiller\'s student_overrides so that the '
                "student's select_proposals returns the teacher's, e.g. "
                "student_overrides=dict(proposals=dict(source='task_heads."
                "det.select_proposals', teacher='<teacher>.proposals')), "
                'or set check_matched=False')
        if s_codes.shape[-1] != t_codes.shape[-1]:
            raise ValueError(f'QueryBoxDistillLoss: the student has '
                             f'{s_codes.shape[-1]} queries and the teacher '
                             f'{t_codes.shape[-1]}: {hint}')
        for side, preds in (('student', student), ('teacher', teacher)):
            if 'query_labels' not in preds:
                raise KeyError(f'QueryBoxDistillLoss: the {side} '
                               'predictions have no query_labels to check '
                               'the matching; set check_matched=False')
        if not torch.equal(student['query_labels'],
                           teacher['query_labels']):
            raise ValueError('QueryBoxDistillLoss: the query_labels of the '
                             f'student and the teacher differ: {hint}')

    def forward(self, student_preds: Dict[str, Tensor],
                teacher_preds: Dict[str, Tensor]) -> Tensor:
        """Compute the loss.

        Args:
            student_preds (dict[str, Tensor]): The student head's forward
                output.
            teacher_preds (dict[str, Tensor]): The teacher head's forward
                output (no gradient).

        Returns:
            Tensor: The scalar loss.
        """
        s_codes = self._codes(student_preds, 'student')
        t_codes = self._codes(teacher_preds, 'teacher').detach()
        if self.check_matched:
            self._check_matched(student_preds, teacher_preds, s_codes,
                                t_codes)
        if s_codes.shape != t_codes.shape:
            raise ValueError(
                f'QueryBoxDistillLoss: student codes {tuple(s_codes.shape)} '
                f'and teacher codes {tuple(t_codes.shape)} differ (keys '
                f'{list(self.keys)})')
        diff = (s_codes - t_codes).abs()  # (B, C, K)
        channels = diff.shape[1]
        if self.code_weights is not None:
            if len(self.code_weights) != channels:
                raise ValueError(
                    f'QueryBoxDistillLoss: {len(self.code_weights)} '
                    f'code_weights for {channels} code channels (keys '
                    f'{list(self.keys)})')
            diff = diff * diff.new_tensor(self.code_weights)[None, :, None]
        if self.score_weighting == 'none':
            return self.loss_weight * diff.mean()
        if 'cls_logits' not in teacher_preds:
            raise KeyError("QueryBoxDistillLoss: score_weighting='teacher' "
                           'needs the teacher\'s cls_logits; they have '
                           f'{sorted(teacher_preds)}')
        weights = teacher_preds['cls_logits'].detach().sigmoid().amax(
            dim=1).to(diff.dtype)  # (B, K)
        if weights.shape != (diff.shape[0], diff.shape[2]):
            raise ValueError(
                'QueryBoxDistillLoss: teacher cls_logits give query weights '
                f'{tuple(weights.shape)} for codes {tuple(diff.shape)}')
        total = (diff.sum(dim=1) * weights).sum()
        norm = (weights.sum() * channels).clamp_min(
            torch.finfo(diff.dtype).tiny)
        return self.loss_weight * total / norm
