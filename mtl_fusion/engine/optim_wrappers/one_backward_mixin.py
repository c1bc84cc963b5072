"""The one-backward parts of the gradient calibration (see
:class:`~.gradient_calibration_mixin.GradientCalibrationMixin`, "Cost"):
the split of a step at the task heads' inputs, the surrogate loss of the
calibrated backward, and the modality gate measured inside that backward.
"""
import logging
from typing import Any, Dict, List, Optional

from mmengine.dist import get_world_size
from mmengine.logging import print_log
from torch import Tensor

from .head_input_split import find_bypass
from .modality_norms import norms_from_grads
from .split_backward import leaf_grads, surrogate_loss
from .task_loss_grouping import TaskLosses

__all__ = ['OneBackwardMixin']


class OneBackwardMixin:
    """Methods of :class:`GradientCalibrationMixin` for ``backward='split'``
    / ``'auto'``; they use its binding, gate, mode and reduce helpers."""

    def _split_inputs(self, active: List[str],
                      groups: TaskLosses) -> Optional[Dict[str, Any]]:
        """The split of this step (leaves, reals, parameters of step 1), or
        None to run the per-task reference path."""
        binding = self._binding
        splitter = binding.splitter
        if splitter is None or self._split_off or not splitter.pairs:
            return None
        head_params = splitter.params()
        losses = [groups.tasks[t] for t in active if t in groups.tasks]
        bypass = find_bypass(losses, splitter.leaves, head_params)
        params, generic = head_params, False
        if bypass:
            names = {id(p): n for n, p in binding.module.named_parameters()}
            found = [names.get(id(t), f'<tensor {tuple(t.shape)}>')
                     for t in bypass]
            message = (
                'gradient calibration: a task loss reaches '
                f'{found} without passing through the inputs of the task '
                f'heads {list(splitter.heads)}, so the graph cannot be split '
                'there (a head reading the shared feature outside forward, '
                'or a loss on a trunk tensor?)')
            if self.backward_mode == 'split':
                raise RuntimeError(
                    message + "; use calibration.backward='per_task' or "
                    "'auto'")
            print_log(
                message + f'. Update {self._inner_count} is computed from '
                'the split graph with every parameter in the per-task step; '
                'later updates use the per-task backward.',
                logger='current', level=logging.WARNING)
            self._split_off = True
            splitter.enabled = False
            params = [p for p in binding.module.parameters()
                      if p.requires_grad]
            generic = True
        return dict(leaves=splitter.leaves, reals=splitter.reals,
                    params=params, generic=generic)

    @staticmethod
    def _included_tasks(active: List[str], groups: TaskLosses) -> List[str]:
        """Tasks differentiated in step 1: the active ones, then the absent
        ones with a loss in the dict. When every weight is 1 the reference
        path back-propagates the model's whole loss, absent tasks' (zero)
        losses included, so the split path needs their gradients too."""
        return list(active) + [t for t in groups.tasks if t not in active]

    def _direct_shared(self, split: Dict[str, Any], task_grads: Dict,
                       tasks: List[str]) -> Optional[List[List]]:
        """Per task, the shared-layer gradients that came around the split
        (only in a step computed with every parameter)."""
        if not split['generic']:
            return None
        index = {id(p): i for i, p in enumerate(split['params'])}
        return [[
            task_grads[t].params[index[id(p)]]
            for p in self._binding.shared_params
        ] for t in tasks]

    def _split_loss(self, loss: Tensor, split: Dict[str, Any],
                    task_grads: Dict, active: List[str],
                    weights: List[float], groups: TaskLosses, factor: float,
                    scale: float) -> Tensor:
        """The surrogate whose backward is the calibrated step."""
        weight_of = dict(zip(active, weights))
        all_ones = all(w == 1.0 for w in weights)
        leaves, params = split['leaves'], split['params']
        coeffs: List[Optional[Tensor]] = [None] * len(leaves)
        param_coeffs: Dict[int, Tensor] = {}

        def add(values, weight, target):
            for i, value in values:
                if value is None:
                    continue
                term = value * (weight * factor)
                target[i] = term if target.get(i) is None else (
                    target[i] + term)

        leaf_map: Dict[int, Tensor] = {}
        for task, grads in task_grads.items():
            if task in weight_of:
                weight = weight_of[task]
            elif all_ones:
                weight = 1.0
            else:
                continue
            add(enumerate(grads.leaves), weight, leaf_map)
            add(enumerate(grads.params), weight, param_coeffs)
        extra = groups.extra
        if extra is not None and extra.requires_grad:
            add(enumerate(leaf_grads(extra, leaves, scale)), 1.0,
                leaf_map)
            extra = extra * factor
        for i, value in leaf_map.items():
            coeffs[i] = value
        total = surrogate_loss(split['reals'], coeffs, params, param_coeffs,
                               extra)
        return loss if total is None else total

    def _arm_gate(self, state: Dict[str, Any], scale: float,
                  info: Dict[str, Any]) -> None:
        """Measure and apply the gate inside the coming backward.

        With ``intra_layer``, a hook on the layer's output keeps its gradient
        (it arrives before the gradient reaches the fuser inputs); the gate
        node then recomputes the layer's weight gradient from it.
        """
        binding = self._binding
        state.update(called=False, intra=None, handles=[])

        def keep(call):
            def hook(grad):
                call['grad'] = grad if call['grad'] is None else (
                    call['grad'] + grad)
            return hook

        def keep_weight(call, slot):
            def hook(grad_inputs, grad_outputs):
                call['weight_grad'] = grad_inputs[slot]
            return hook

        if binding.intra_param is not None:
            for call in binding.intra_calls:
                slot = binding.intra_grad_slot(call['output'])
                if slot is not None:
                    state['handles'].append(
                        call['output'].grad_fn.register_hook(
                            keep_weight(call, slot)))
                else:
                    state['handles'].append(
                        call['output'].register_hook(keep(call)))

        def on_backward(grads: Dict[str, Tensor]) -> Dict[str, float]:
            state['called'] = True
            if binding.intra_param is not None:
                state['intra'] = binding.intra_weight_grad()
                if state['intra'] is None:
                    raise RuntimeError(
                        'gradient calibration: no gradient reached '
                        f'intra_layer {self.intra_layer_name!r} before the '
                        'fuser inputs; intra_layer must be inside the fuser. '
                        "Use calibration.backward='per_task'")
            return self._gate_from(state, grads, scale, info)

        binding.scaler.on_backward = on_backward

    def _gate_from(self, state: Dict[str, Any], grads: Dict[str, Tensor],
                   scale: float, info: Dict[str, Any]) -> Dict[str, float]:
        world = get_world_size() if self._distributed else 1
        norms = norms_from_grads(self._binding, scale, self._reduce, world,
                                 self._device(), input_grads=grads,
                                 intra_grad=state.get('intra'))
        return self._apply_gate_norms(norms, info)
