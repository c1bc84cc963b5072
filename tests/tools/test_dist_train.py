"""tools/dist_train.sh: 2 CPU processes (gloo) train a small model with DDP.

The DDP run (2 ranks x batch 2, gradients averaged) must end with the same
weights as a single process on batch 4 (same samples per step), and both
ranks must hold identical weights.
"""
import os
import os.path as osp
import subprocess
import sys
import textwrap

import torch

import mtl_fusion  # noqa: F401  (checkpoint allow-list)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

TOY_MODULES = textwrap.dedent('''
    import torch
    import torch.nn as nn
    from mmengine.model import BaseModel
    from mmengine.dist import get_rank
    from mmengine.hooks import Hook
    from mmdet3d.registry import DATASETS, HOOKS, MODELS


    @DATASETS.register_module(force=True)
    class ToyDDPDataset(torch.utils.data.Dataset):
        def __init__(self, n=32):
            gen = torch.Generator().manual_seed(0)
            self.x = torch.randn(n, 4, generator=gen)
            self.y = torch.sin(self.x.sum(1, keepdim=True))
            self.metainfo = {}

        def __len__(self):
            return len(self.x)

        def __getitem__(self, i):
            return dict(inputs=self.x[i], target=self.y[i])


    @MODELS.register_module(force=True)
    class ToyDDPRegressor(BaseModel):
        def __init__(self):
            super().__init__()
            gen = torch.Generator().manual_seed(1)
            self.net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(),
                                     nn.Linear(8, 1))
            for p in self.net.parameters():
                p.data = torch.randn(p.shape, generator=gen) * 0.5

        def forward(self, inputs, target=None, mode='tensor'):
            out = self.net(inputs)
            if mode == 'loss':
                return dict(loss=((out - target) ** 2).mean())
            return out


    @HOOKS.register_module(force=True)
    class DumpRankWeightsHook(Hook):
        """Every rank writes its final weights to the work dir."""

        def after_run(self, runner):
            model = getattr(runner.model, 'module', runner.model)
            torch.save(model.state_dict(),
                       f'{runner.work_dir}/rank{get_rank()}_weights.pth')
''')


def _config(tmp_path, batch_size):
    cfg = tmp_path / f'toy_ddp_b{batch_size}.py'
    cfg.write_text(
        textwrap.dedent(f'''
        _base_ = [{osp.join(REPO, 'configs/_base_/default_runtime.py')!r}]
        custom_imports = dict(imports=['mtl_fusion', 'toy_ddp_modules'])
        model = dict(type='ToyDDPRegressor')
        train_dataloader = dict(
            batch_size={batch_size}, num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=False),
            collate_fn=dict(type='default_collate'),
            dataset=dict(type='ToyDDPDataset'))
        train_cfg = dict(by_epoch=False, max_iters=5, val_interval=100)
        optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.2))
        default_hooks = dict(
            checkpoint=dict(type='CheckpointHook', interval=5,
                            by_epoch=False))
        log_processor = dict(by_epoch=False)
        custom_hooks = [dict(type='DumpRankWeightsHook')]
        randomness = dict(seed=0)
        '''))
    return str(cfg)


def _run(cmd, tmp_path, extra_env=None):
    env = dict(os.environ, **(extra_env or {}))
    env['PYTHONPATH'] = os.pathsep.join(
        [str(tmp_path), REPO, env.get('PYTHONPATH', '')])
    env['PYTHON'] = sys.executable
    env['OMP_NUM_THREADS'] = '1'
    proc = subprocess.run(
        cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def _weights(path):
    return torch.load(path, map_location='cpu')['state_dict']


def test_two_process_gloo_training_matches_single_process(tmp_path):
    (tmp_path / 'toy_ddp_modules.py').write_text(TOY_MODULES)
    port = str(29500 + os.getpid() % 1000)
    ddp_dir = tmp_path / 'ddp'
    log = _run([
        'bash',
        osp.join(REPO, 'tools', 'dist_train.sh'),
        _config(tmp_path, batch_size=2), '2', '--work-dir',
        str(ddp_dir)
    ], tmp_path, extra_env=dict(PORT=port))
    assert 'Distributed launcher: pytorch' in log
    assert 'Distributed training: True' in log
    rank0 = torch.load(ddp_dir / 'rank0_weights.pth')
    rank1 = torch.load(ddp_dir / 'rank1_weights.pth')
    for key in rank0:
        torch.testing.assert_close(rank0[key], rank1[key], atol=0, rtol=0)
    single_dir = tmp_path / 'single'
    _run([
        sys.executable,
        osp.join(REPO, 'tools', 'train.py'),
        _config(tmp_path, batch_size=4), '--work-dir',
        str(single_dir)
    ], tmp_path)
    ddp = _weights(ddp_dir / 'iter_5.pth')
    single = _weights(single_dir / 'iter_5.pth')
    assert ddp.keys() == single.keys()
    start = ToyInit.weights()
    moved = False
    for key in ddp:
        torch.testing.assert_close(ddp[key], single[key], atol=1e-6,
                                   rtol=1e-5)
        moved |= not torch.allclose(ddp[key], start[key])
    assert moved, 'training did not change the weights'


class ToyInit:
    """The toy model's initial weights, rebuilt independently."""

    @staticmethod
    def weights():
        gen = torch.Generator().manual_seed(1)
        net = torch.nn.Sequential(
            torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
        for p in net.parameters():
            p.data = torch.randn(p.shape, generator=gen) * 0.5
        return {f'net.{k}': v for k, v in net.state_dict().items()}
