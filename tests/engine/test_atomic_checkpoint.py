"""Checkpoints and the ``last_checkpoint`` pointer are written atomically.

A child process trains a tiny mmengine Runner and is killed by the kernel
(SIGXFSZ from a lowered RLIMIT_FSIZE) in the middle of a write: either the
bytes of ``iter_2.pth`` or the ``last_checkpoint`` text. No code of ours is
patched to provoke it, so the same test shows the partial files that plain
``open(path, 'wb')`` leaves behind.
"""
import glob
import os
import os.path as osp
import resource
import signal
import subprocess
import sys

import pytest
import torch
import torch.nn as nn
from mmengine.fileio import get_file_backend
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner

import mtl_fusion  # noqa: F401  (atomic backends + loader)
from mtl_fusion.utils.checkpoint import atomic_write, load_checkpoint_file

pytestmark = pytest.mark.skipif(sys.platform != 'linux',
                                reason='needs RLIMIT_FSIZE (Linux)')


class _ToyDataset(torch.utils.data.Dataset):

    def __len__(self):
        return 8

    def __getitem__(self, i):
        x = torch.arange(3, dtype=torch.float32) + i
        return dict(inputs=x, target=x.sum(0, keepdim=True) * 0.1)


class _ToyRegressor(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 1)
        # makes a checkpoint large enough to be cut in the middle
        self.register_buffer('ballast', torch.zeros(64, 1024))

    def forward(self, inputs, target=None, mode='tensor'):
        out = self.linear(inputs)
        if mode == 'loss':
            return dict(loss=((out - target)**2).mean())
        return out


class _StartIter(Hook):

    def before_train(self, runner):
        self.start = runner.iter


def _runner(work_dir, max_iters=3, resume=False, hooks=()):
    torch.manual_seed(0)
    return Runner(
        model=_ToyRegressor(),
        work_dir=work_dir,
        train_dataloader=dict(dataset=_ToyDataset(),
                              sampler=dict(type='DefaultSampler',
                                           shuffle=False),
                              collate_fn=dict(type='default_collate'),
                              batch_size=4,
                              num_workers=0),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(checkpoint=dict(
            type='CheckpointHook', interval=1, by_epoch=False)),
        custom_hooks=list(hooks),
        randomness=dict(seed=0),
        resume=resume,
        default_scope='mmengine')


def _child(work_dir, stage):
    """Child process: train and get killed at save #2 (see
    :func:`_train_and_die`)."""
    from mmengine.runner import runner as runner_module
    original = runner_module.save_checkpoint
    calls = []

    def die_at(limit):
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
        _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))

    def save_checkpoint(checkpoint, filename, *args, **kwargs):
        calls.append(filename)
        if len(calls) == 2 and stage == 'checkpoint':
            die_at(osp.getsize(calls[0]) // 2)
        original(checkpoint, filename, *args, **kwargs)
        if len(calls) == 2 and stage == 'pointer':
            die_at(8)

    runner_module.save_checkpoint = save_checkpoint
    _runner(work_dir).train()


def _train_and_die(work_dir, stage):
    """Run a fresh interpreter that trains and is killed while writing at
    save #2 (a new process rather than a fork: forking a test process that
    holds threads can deadlock the child on a lock).

    ``stage='checkpoint'``: killed half-way through the bytes of
    ``iter_2.pth``; ``stage='pointer'``: ``iter_2.pth`` is written, then
    killed after 8 bytes of the ``last_checkpoint`` text.

    Returns:
        subprocess.CompletedProcess: The child's result.
    """
    env = dict(os.environ, OMP_NUM_THREADS='1')
    return subprocess.run(
        [sys.executable, osp.abspath(__file__), work_dir, stage],
        env=env, capture_output=True, text=True, timeout=600)


def _assert_killed(proc):
    assert proc.returncode == -signal.SIGXFSZ, (
        'the child was not killed while writing (return code '
        f'{proc.returncode}): {proc.stderr[-2000:]}')


def _pointer(work_dir):
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def _resume_and_compare(tmp_path, work_dir):
    """A resumed Runner starts at iter 1 and ends where a run without the
    kill ends."""
    start = _StartIter()
    resumed = _runner(work_dir, resume=True, hooks=[start])
    resumed.train()
    assert start.start == 1
    assert resumed.iter == 3
    full = _runner(str(tmp_path / 'full'))
    full.train()
    for a, b in zip(full.model.parameters(), resumed.model.parameters()):
        torch.testing.assert_close(a, b)
    assert load_checkpoint_file(osp.join(work_dir,
                                         'iter_3.pth'))['meta']['iter'] == 3


def test_kill_while_writing_checkpoint_leaves_no_partial_file(tmp_path):
    work_dir = str(tmp_path / 'work')
    _assert_killed(_train_and_die(work_dir, 'checkpoint'))
    first = osp.join(work_dir, 'iter_1.pth')
    second = osp.join(work_dir, 'iter_2.pth')
    assert load_checkpoint_file(first)['meta']['iter'] == 1
    # either absent or complete; never the half that was written
    if osp.exists(second):
        assert load_checkpoint_file(second)['meta']['iter'] == 2
    assert not osp.exists(second)
    # the pointer still names the last complete checkpoint
    assert _pointer(work_dir) == first
    _resume_and_compare(tmp_path, work_dir)


def test_kill_while_writing_pointer_keeps_the_previous_one(tmp_path):
    work_dir = str(tmp_path / 'work')
    _assert_killed(_train_and_die(work_dir, 'pointer'))
    first = osp.join(work_dir, 'iter_1.pth')
    # the cut text is never visible: the pointer is the old, complete one
    assert _pointer(work_dir) == first
    assert load_checkpoint_file(osp.join(work_dir,
                                         'iter_2.pth'))['meta']['iter'] == 2
    _resume_and_compare(tmp_path, work_dir)


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = str(tmp_path / 'iter_1.pth')
    atomic_write(path, b'old complete bytes')

    def broken_fsync(fd):
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(os, 'fsync', broken_fsync)
    with pytest.raises(OSError, match='No space left'):
        get_file_backend(path).put(b'new' * 1000, path)
    with open(path, 'rb') as f:
        assert f.read() == b'old complete bytes'
    # no temporary file is left behind
    assert os.listdir(str(tmp_path)) == ['iter_1.pth']


def test_mmengine_local_writes_are_atomic_and_keep_the_mode(tmp_path):
    backend = get_file_backend(str(tmp_path / 'a.pth'))
    assert type(backend).__name__ == 'AtomicLocalBackend'
    path = str(tmp_path / 'sub' / 'a.pth')
    backend.put(b'abc', path)
    backend.put_text('text', str(tmp_path / 'sub' / 'b.txt'))
    with open(str(tmp_path / 'plain'), 'wb') as f:
        f.write(b'x')
    assert os.stat(path).st_mode == os.stat(str(tmp_path / 'plain')).st_mode
    with open(path, 'rb') as f:
        assert f.read() == b'abc'
    assert sorted(os.listdir(str(tmp_path / 'sub'))) == ['a.pth', 'b.txt']
    assert glob.glob(str(tmp_path / '**' / '*.tmp'), recursive=True) == []


if __name__ == '__main__':
    _child(sys.argv[1], sys.argv[2])
