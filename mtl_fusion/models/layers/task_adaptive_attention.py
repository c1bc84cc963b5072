"""Task-adaptive attention generator (TAG): per-task channel attention from
the deepest semantic feature plus a shared spatial map from the detail
feature."""
from typing import Dict, Optional, Sequence

import torch
from mmdet3d.registry import MODELS
from mmdet3d.utils import OptMultiConfig
from mmengine.model import BaseModule, ModuleDict
from torch import Tensor, nn

__all__ = ['TaskAdaptiveAttentionGenerator']


@MODELS.register_module()
class TaskAdaptiveAttentionGenerator(BaseModule):
    """Task-specific features from one shared feature (TAG).

    For every task ``t``:

    - ``alpha_t = sigmoid(MLP_t(GAP(x_semantic)))``, a (B, C, 1, 1) channel
      attention. ``MLP_t`` has two linear layers with a ReLU between them,
      ``semantic_channels -> hidden_channels -> in_channels``; the default
      hidden width ``semantic_channels // 4`` gives about 1 M parameters
      for three tasks at the paper's widths (1024 -> 256 -> 256), the
      paper's parameter difference between the models with and without
      TAG (33.9 M - 32.8 M).
    - ``beta = sigmoid(conv(x_detail))``, shared by the tasks: one dilated
      conv (default 3x3, dilation 2, padding keeping the size) to
      ``beta_channels`` maps; the default 1 is a spatial map broadcast
      over the channels of ``h``, ``in_channels`` gives one map per
      channel.
    - ``h_t = alpha_t * h + beta``.

    ``use_alpha=False`` sets ``alpha_t = 1`` (no MLPs are built) and
    ``use_beta=False`` sets ``beta = 0`` (no conv is built): the Table III
    ablations. At least one of them must be on (with both off every task
    gets ``h``: build no attention module instead).

    The module is generic: ``h`` and ``x_detail`` must share their spatial
    size, ``x_semantic`` may have any size (it is pooled), so it also sits
    between a BEV decoder and BEV heads.

    Args:
        tasks (Sequence[str]): Task names, the keys of the output.
        in_channels (int): Channels C of the shared feature ``h``.
        semantic_channels (int): Channels of ``x_semantic``.
        detail_channels (int): Channels of ``x_detail``.
        hidden_channels (int, optional): Hidden width of the MLPs; None
            means ``max(semantic_channels // 4, 1)``. Defaults to None.
        beta_channels (int): 1 (a spatial map) or ``in_channels``.
            Defaults to 1.
        beta_kernel_size (int): Kernel size of beta's conv (odd).
            Defaults to 3.
        beta_dilation (int): Dilation of beta's conv. Defaults to 2.
        use_alpha (bool): Use the per-task channel attention.
            Defaults to True.
        use_beta (bool): Use the shared spatial attention.
            Defaults to True.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    def __init__(self,
                 tasks: Sequence[str],
                 in_channels: int,
                 semantic_channels: int,
                 detail_channels: int,
                 hidden_channels: Optional[int] = None,
                 beta_channels: int = 1,
                 beta_kernel_size: int = 3,
                 beta_dilation: int = 2,
                 use_alpha: bool = True,
                 use_beta: bool = True,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        tasks = list(tasks)
        if not tasks or len(set(tasks)) != len(tasks) or not all(
                isinstance(t, str) and t for t in tasks):
            raise ValueError('tasks must be distinct non-empty names, got '
                             f'{tasks}')
        if not (use_alpha or use_beta):
            raise ValueError('use_alpha and use_beta are both False: every '
                             'task would get h unchanged; build the model '
                             'without a task attention module instead')
        if beta_channels not in (1, in_channels):
            raise ValueError(f'beta_channels must be 1 or in_channels '
                             f'({in_channels}), got {beta_channels}')
        if beta_kernel_size < 1 or beta_kernel_size % 2 == 0:
            raise ValueError('beta_kernel_size must be a positive odd int, '
                             f'got {beta_kernel_size}')
        self.tasks = tasks
        self.in_channels = in_channels
        self.use_alpha = use_alpha
        self.use_beta = use_beta
        if hidden_channels is None:
            hidden_channels = max(semantic_channels // 4, 1)
        self.hidden_channels = hidden_channels
        if use_alpha:
            self.alpha_mlps = ModuleDict({
                task: nn.Sequential(
                    nn.Linear(semantic_channels, hidden_channels),
                    nn.ReLU(inplace=True),
                    nn.Linear(hidden_channels, in_channels))
                for task in tasks
            })
        if use_beta:
            self.beta_conv = nn.Conv2d(
                detail_channels,
                beta_channels,
                beta_kernel_size,
                padding=beta_dilation * (beta_kernel_size // 2),
                dilation=beta_dilation)

    def alpha(self, task: str, x_semantic: Tensor) -> Tensor:
        """Channel attention of ``task``.

        Args:
            task (str): Task name.
            x_semantic (Tensor): (B, semantic_channels, h, w).

        Returns:
            Tensor: (B, in_channels, 1, 1) values in (0, 1).
        """
        pooled = x_semantic.mean(dim=(2, 3))
        return torch.sigmoid(self.alpha_mlps[task](pooled))[..., None, None]

    def beta(self, x_detail: Tensor) -> Tensor:
        """Shared spatial attention.

        Args:
            x_detail (Tensor): (B, detail_channels, H, W).

        Returns:
            Tensor: (B, beta_channels, H, W) values in (0, 1).
        """
        return torch.sigmoid(self.beta_conv(x_detail))

    def forward(self, h: Tensor, x_semantic: Tensor,
                x_detail: Tensor) -> Dict[str, Tensor]:
        """Task-specific features ``{task: alpha_t * h + beta}``.

        Args:
            h (Tensor): (B, in_channels, H, W) shared feature.
            x_semantic (Tensor): (B, semantic_channels, h, w), any size.
            x_detail (Tensor): (B, detail_channels, H, W).

        Returns:
            dict[str, Tensor]: (B, in_channels, H, W) per task.
        """
        if h.dim() != 4 or h.shape[1] != self.in_channels:
            raise ValueError(f'{type(self).__name__}: h must be (B, '
                             f'{self.in_channels}, H, W), got '
                             f'{tuple(h.shape)}')
        if (x_detail.shape[0], *x_detail.shape[2:]) != (h.shape[0],
                                                        *h.shape[2:]):
            raise ValueError(f'{type(self).__name__}: x_detail '
                             f'{tuple(x_detail.shape)} must have the batch '
                             f'and spatial size of h {tuple(h.shape)}')
        beta = self.beta(x_detail) if self.use_beta else None
        out = {}
        for task in self.tasks:
            feat = self.alpha(task, x_semantic) * h if self.use_alpha else h
            out[task] = feat + beta if beta is not None else feat
        return out
