"""Version window, checkpoint allow-list and resume through mmengine."""
import os
import os.path as osp
import pickle

import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.runner import Runner, load_checkpoint

import mtl_fusion  # noqa: F401
from mtl_fusion.utils.compat import SUPPORTED_VERSIONS, check_versions


def test_installed_stack_is_inside_the_window():
    check_versions()


@pytest.mark.parametrize('package,bad', [('mmcv', '2.2.0'),
                                         ('numpy', '2.1.0'),
                                         ('mmdet', '3.1.0'),
                                         ('torch', '1.13.1+cu117')])
def test_version_outside_window_says_what_to_install(package, bad):
    with pytest.raises(ImportError) as err:
        check_versions({package: bad})
    message = str(err.value)
    assert f'{package} {bad}' in message
    assert SUPPORTED_VERSIONS[package][2] in message
    assert 'tools/install.sh' in message


def test_local_version_tags_are_accepted():
    check_versions({'torch': '2.13.0+cpu', 'mmcv': '2.1.0'})


class _Evil:
    """Pickles to a call of os.system: must never be executed on load."""

    def __reduce__(self):
        return (os.system, ('echo pwned > /dev/null', ))


def test_checkpoint_with_pickled_callable_is_refused(tmp_path):
    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {}, 'meta': {'payload': _Evil()}}, path)
    with pytest.raises(pickle.UnpicklingError, match='system'):
        torch.load(path)
    model = nn.Linear(2, 2)
    with pytest.raises(pickle.UnpicklingError):
        load_checkpoint(model, path)


class _ToyDataset(torch.utils.data.Dataset):

    def __init__(self, n=16):
        gen = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 3, generator=gen)
        self.y = self.x @ torch.tensor([[1.0], [-2.0], [0.5]])

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return dict(inputs=self.x[i], target=self.y[i])


class _ToyRegressor(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 1)

    def forward(self, inputs, target=None, mode='tensor'):
        out = self.linear(inputs)
        if mode == 'loss':
            return dict(loss=((out - target)**2).mean())
        return out


def _runner(work_dir, max_epochs, resume=False):
    torch.manual_seed(0)  # the model is built before the Runner seeds
    return Runner(
        model=_ToyRegressor(),
        work_dir=work_dir,
        train_dataloader=dict(
            dataset=_ToyDataset(),
            sampler=dict(type='DefaultSampler', shuffle=True, seed=0),
            collate_fn=dict(type='default_collate'),
            batch_size=4,
            num_workers=0),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.05,
                                          momentum=0.9)),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook',
                                           interval=1)),
        randomness=dict(seed=0),
        resume=resume,
        default_scope='mmengine')


def test_runner_resumes_from_its_own_checkpoint(tmp_path):
    work_dir = str(tmp_path)
    full = _runner(osp.join(work_dir, 'full'), max_epochs=3)
    full.train()

    first = _runner(osp.join(work_dir, 'split'), max_epochs=2)
    first.train()
    ckpt = osp.join(work_dir, 'split', 'epoch_2.pth')
    # the checkpoint holds numpy / mmengine objects besides tensors,
    # and still loads with weights_only=True
    loaded = torch.load(ckpt, weights_only=True)
    assert 'message_hub' in loaded and 'optimizer' in loaded

    resumed = _runner(osp.join(work_dir, 'split'), max_epochs=3, resume=True)
    resumed.train()
    assert resumed.iter == full.iter == 12
    for a, b in zip(full.model.parameters(), resumed.model.parameters()):
        torch.testing.assert_close(a, b)


class _Sneaky:
    """Pickles to getattr(os, 'system'): the getattr alias must refuse it."""

    def __reduce__(self):
        return (getattr, (nn.Linear, '__init__'))


def test_getattr_is_only_allowed_for_history_buffer(tmp_path):
    path = str(tmp_path / 'sneaky.pth')
    torch.save({'meta': {'x': _Sneaky()}}, path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)
