"""One safe checkpoint loader: ``weights_only=True`` and errors that name the
file and the case, for our own loads and for mmengine's (Runner
``load_from`` / ``resume``, ``load_checkpoint``)."""
import os
import os.path as osp
import pickle

import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.runner import Runner, load_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint

import mtl_fusion  # noqa: F401  (installs the loader into mmengine)
from mtl_fusion.utils import checkpoint as ckpt_mod
from mtl_fusion.utils.checkpoint import (
    CheckpointCorruptError, CheckpointDisallowedError, CheckpointLoadError,
    CheckpointNotFoundError, CheckpointTruncatedError, load_checkpoint_file)

TORCH_ADVICE = ('weights_only set to False', 'weights_only=False',
                '`weights_only` set to `False`')


class _Custom:
    """Any class outside the allow-list."""


class _Evil:

    def __reduce__(self):
        return (os.system, ('echo pwned > /dev/null', ))


class _ToyDataset(torch.utils.data.Dataset):

    def __len__(self):
        return 8

    def __getitem__(self, i):
        x = torch.full((3, ), float(i))
        return dict(inputs=x, target=x.sum(0, keepdim=True))


class _ToyRegressor(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 1)

    def forward(self, inputs, target=None, mode='tensor'):
        out = self.linear(inputs)
        if mode == 'loss':
            return dict(loss=((out - target)**2).mean())
        return out


def _runner(work_dir, **kwargs):
    cfg = dict(model=_ToyRegressor(),
               work_dir=str(work_dir),
               train_dataloader=dict(dataset=_ToyDataset(),
                                     sampler=dict(type='DefaultSampler',
                                                  shuffle=False),
                                     collate_fn=dict(type='default_collate'),
                                     batch_size=4,
                                     num_workers=0),
               optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
               train_cfg=dict(by_epoch=False, max_iters=2),
               default_hooks=dict(checkpoint=dict(type='CheckpointHook',
                                                  interval=1,
                                                  by_epoch=False),
                                  logger=dict(type='LoggerHook', interval=1)),
               default_scope='mmengine')
    cfg.update(kwargs)
    return Runner(**cfg)


@pytest.fixture(scope='module')
def mmengine_ckpt(tmp_path_factory):
    """A real checkpoint written by an mmengine Runner (message hub,
    optimizer, numpy meta)."""
    work_dir = tmp_path_factory.mktemp('toy_run')
    _runner(work_dir).train()
    path = osp.join(str(work_dir), 'iter_2.pth')
    assert osp.isfile(path)
    return path


def _check_message(error, path, case):
    text = str(error)
    assert path in text, text
    assert error.filename == path
    assert error.case == case
    for advice in TORCH_ADVICE:
        assert advice not in text, text
    # torch's chained message (with its advice) is not shown either
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__
    return text


def _write_bad_files(folder, good):
    data = open(good, 'rb').read()
    files = {}
    files['empty'] = osp.join(folder, 'empty.pth')
    open(files['empty'], 'wb').close()
    for cut in (1, 10, 200, len(data) // 2, len(data) - 1):
        files[f'cut{cut}'] = osp.join(folder, f'cut{cut}.pth')
        with open(files[f'cut{cut}'], 'wb') as f:
            f.write(data[:cut])
    files['random'] = osp.join(folder, 'random.pth')
    with open(files['random'], 'wb') as f:
        f.write(os.urandom(4096))
    files['text'] = osp.join(folder, 'text.pth')
    with open(files['text'], 'w') as f:
        f.write('not a checkpoint\n' * 10)
    files['plain_pickle'] = osp.join(folder, 'plain_pickle.pth')
    with open(files['plain_pickle'], 'wb') as f:
        pickle.dump({'state_dict': {}}, f)
    return files


def test_not_found(tmp_path):
    path = str(tmp_path / 'missing.pth')
    with pytest.raises(CheckpointNotFoundError) as info:
        load_checkpoint_file(path)
    assert 'not found' in _check_message(info.value, path, 'not_found')
    assert isinstance(info.value, FileNotFoundError)
    with pytest.raises(CheckpointNotFoundError, match='not a file'):
        load_checkpoint_file(str(tmp_path))


def test_empty_and_truncated_name_the_file(tmp_path, mmengine_ckpt):
    files = _write_bad_files(str(tmp_path), mmengine_ckpt)
    for key, path in files.items():
        if key not in ('empty', ) and not key.startswith('cut'):
            continue
        with pytest.raises(CheckpointTruncatedError) as info:
            load_checkpoint_file(path)
        text = _check_message(info.value, path, 'truncated')
        assert 'truncated' in text and 'torch raised' in text, text


def test_truncated_says_what_is_missing(tmp_path, mmengine_ckpt):
    files = _write_bad_files(str(tmp_path), mmengine_ckpt)
    with pytest.raises(CheckpointTruncatedError,
                       match='zip central directory is missing'):
        load_checkpoint_file(files['cut200'])
    with pytest.raises(CheckpointTruncatedError, match='0 bytes'):
        load_checkpoint_file(files['empty'])
    legacy = str(tmp_path / 'legacy.pth')
    torch.save({'w': torch.ones(100)},
               legacy,
               _use_new_zipfile_serialization=False)
    assert torch.equal(load_checkpoint_file(legacy)['w'], torch.ones(100))
    data = open(legacy, 'rb').read()
    with open(legacy, 'wb') as f:
        f.write(data[:len(data) // 2])
    with pytest.raises(CheckpointTruncatedError) as info:
        load_checkpoint_file(legacy)
    assert 'unexpected end of file' in _check_message(info.value, legacy,
                                                      'truncated')


@pytest.mark.parametrize('key', ['random', 'text', 'plain_pickle'])
def test_corrupt_is_not_a_torch_checkpoint(tmp_path, mmengine_ckpt, key):
    path = _write_bad_files(str(tmp_path), mmengine_ckpt)[key]
    with pytest.raises(CheckpointCorruptError) as info:
        load_checkpoint_file(path)
    text = _check_message(info.value, path, 'corrupt')
    assert 'corrupt' in text and 'not a torch checkpoint' in text
    assert 'torch raised' in text


@pytest.mark.parametrize('payload,name', [(_Custom(), '_Custom'),
                                          (_Evil(), 'system'),
                                          (osp.join, 'join')])
def test_disallowed_global_is_named_and_refused(tmp_path, payload, name):
    path = str(tmp_path / 'unsafe.pth')
    torch.save({'state_dict': {}, 'meta': {'x': payload}}, path)
    with pytest.raises(CheckpointDisallowedError) as info:
        load_checkpoint_file(path)
    text = _check_message(info.value, path, 'disallowed')
    assert 'disallowed' in text and name in text
    assert 'may run code when loaded' in text and 'refused' in text
    assert 'UnpicklingError' in text
    # still an UnpicklingError for callers that catch torch's class
    assert isinstance(info.value, pickle.UnpicklingError)


def test_real_mmengine_checkpoint_loads(mmengine_ckpt):
    loaded = load_checkpoint_file(mmengine_ckpt)
    assert {'meta', 'state_dict', 'message_hub', 'optimizer'} <= set(loaded)
    assert torch.is_tensor(loaded['state_dict']['linear.weight'])
    model = _ToyRegressor()
    load_checkpoint(model, mmengine_ckpt)
    torch.testing.assert_close(model.linear.weight,
                               loaded['state_dict']['linear.weight'])


def test_mmengine_local_scheme_is_ours(tmp_path):
    assert (CheckpointLoader._get_checkpoint_loader('work_dirs/x.pth')
            is ckpt_mod.load_from_local)
    path = str(tmp_path / 'random.pth')
    with open(path, 'wb') as f:
        f.write(os.urandom(1024))
    with pytest.raises(CheckpointCorruptError) as info:
        _load_checkpoint(path, map_location='cpu')
    _check_message(info.value, path, 'corrupt')
    with pytest.raises(CheckpointCorruptError):
        load_checkpoint(nn.Linear(2, 2), path)


def test_runner_load_from_random_bytes_gives_our_error(tmp_path):
    path = str(tmp_path / 'random.pth')
    with open(path, 'wb') as f:
        f.write(os.urandom(4096))
    runner = _runner(tmp_path / 'work', load_from=path)
    with pytest.raises(CheckpointCorruptError) as info:
        runner.load_or_resume()
    _check_message(info.value, path, 'corrupt')


def test_runner_resume_from_truncated_gives_our_error(tmp_path, mmengine_ckpt):
    path = str(tmp_path / 'iter_2.pth')
    data = open(mmengine_ckpt, 'rb').read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])
    runner = _runner(tmp_path / 'work', load_from=path, resume=True)
    with pytest.raises(CheckpointTruncatedError) as info:
        runner.load_or_resume()
    _check_message(info.value, path, 'truncated')


def test_teacher_random_bytes_names_teacher_and_file(tmp_path):
    from mtl_fusion.models.algorithms.teacher_loading import \
        load_teacher_checkpoint
    path = str(tmp_path / 'teacher.pth')
    with open(path, 'wb') as f:
        f.write(os.urandom(4096))
    with pytest.raises(CheckpointCorruptError) as info:
        load_teacher_checkpoint(nn.Linear(2, 2), path, 'big')
    text = _check_message(info.value, path, 'corrupt')
    assert text.startswith("teacher 'big': ") and 'corrupt' in text
    assert isinstance(info.value, RuntimeError)
    unsafe = str(tmp_path / 'unsafe.pth')
    torch.save({'state_dict': {}, 'hook': _Evil()}, unsafe)
    with pytest.raises(CheckpointDisallowedError) as info:
        load_teacher_checkpoint(nn.Linear(2, 2), unsafe, 'big')
    text = _check_message(info.value, unsafe, 'disallowed')
    assert "teacher 'big'" in text and 'system' in text


def test_convert_kd_checkpoint_truncated_names_the_file(
        tmp_path, mmengine_ckpt):
    from mtl_fusion.models.algorithms import convert_kd_checkpoint
    path = str(tmp_path / 'kd.pth')
    data = open(mmengine_ckpt, 'rb').read()
    with open(path, 'wb') as f:
        f.write(data[:-1])
    with pytest.raises(CheckpointTruncatedError) as info:
        convert_kd_checkpoint(path, str(tmp_path / 'out.pth'))
    _check_message(info.value, path, 'truncated')
    assert not osp.exists(tmp_path / 'out.pth')


def test_errors_pickle_round_trip(tmp_path):
    """Errors cross process boundaries (DDP workers, dataloaders) intact."""
    error = CheckpointTruncatedError('checkpoint x.pth is truncated', 'x.pth')
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is CheckpointTruncatedError
    assert str(back) == str(error) and back.filename == 'x.pth'
    assert back.case == 'truncated' and isinstance(back, CheckpointLoadError)


def test_damaged_archive_is_corrupt(tmp_path, mmengine_ckpt):
    """Bytes flipped inside an intact zip (bit rot, bad copy)."""
    data = bytearray(open(mmengine_ckpt, 'rb').read())
    start = data.find(b'data.pkl') + 40
    data[start:start + 8] = b'\xff' * 8
    path = str(tmp_path / 'flipped.pth')
    with open(path, 'wb') as f:
        f.write(bytes(data))
    with pytest.raises(CheckpointCorruptError) as info:
        load_checkpoint_file(path)
    text = _check_message(info.value, path, 'corrupt')
    assert 'damaged' in text and 'torch raised' in text
