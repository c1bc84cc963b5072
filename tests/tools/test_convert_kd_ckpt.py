"""tools/model_converters/convert_kd_ckpt_to_student.py: the converted
checkpoint loads with the student's own plain config (Runner and
tools/test.py) and predicts exactly what the student predicted inside the
distillation model."""
import copy
import os
import os.path as osp
import re
import subprocess
import sys
import textwrap

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY_DIR = osp.join(REPO, 'tests', 'models', 'algorithms')
sys.path.insert(0, TOY_DIR)
from kd_toy import algorithm_cfg, save_teacher  # noqa: E402

from mtl_fusion.engine import runner as _loops  # noqa: E402,F401

TOOL = osp.join(REPO, 'tools', 'model_converters',
                'convert_kd_ckpt_to_student.py')

DATA = dict(
    dataset=dict(type='KDToyDataset', n=6, seed=3),
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='pseudo_collate'),
    batch_size=2,
    num_workers=0)


def _student_config(path):
    path.write_text(textwrap.dedent(f'''
        custom_imports = dict(imports=['mtl_fusion', 'kd_toy'],
                              allow_failed_imports=False)
        default_scope = 'mmdet3d'
        model = dict(type='KDToyNet', channels=4, seed=0)
        test_dataloader = {DATA!r}
        test_evaluator = dict(type='KDToyMetric')
        test_cfg = dict(type='TestLoop')
        env_cfg = dict(dist_cfg=dict(backend='gloo'))
        '''))
    return str(path)


def _env():
    env = dict(os.environ, OMP_NUM_THREADS='1')
    env['PYTHONPATH'] = os.pathsep.join(
        [TOY_DIR, REPO, env.get('PYTHONPATH', '')])
    return env


@pytest.fixture
def trained_kd(tmp_path):
    ckpt = str(tmp_path / 'teacher.pth')
    save_teacher(ckpt)
    runner = Runner(
        model=algorithm_cfg(ckpt),
        work_dir=str(tmp_path / 'kd'),
        train_dataloader=dict(DATA, dataset=dict(type='KDToyDataset', n=8)),
        test_dataloader=DATA,
        test_evaluator=dict(type='KDToyMetric'),
        test_cfg=dict(type='DistillTestLoop'),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        train_cfg=dict(by_epoch=False, max_iters=3),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook',
                                           interval=3, by_epoch=False)),
        randomness=dict(seed=0),
        default_scope='mmdet3d')
    runner.train()
    return runner, osp.join(str(tmp_path / 'kd'), 'iter_3.pth')


def test_round_trip_identical_predictions(trained_kd, tmp_path):
    runner, kd_ckpt = trained_kd
    out = str(tmp_path / 'student' / 'student.pth')
    proc = subprocess.run([sys.executable, TOOL, kd_ckpt, out],
                          cwd=REPO, env=_env(), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'student tensors' in proc.stdout

    converted = torch.load(out, weights_only=True)
    keys = set(converted['state_dict'])
    student_state = runner.model.student.state_dict()
    assert keys == set(student_state)
    # layer versions stay with their modules, re-keyed
    assert converted['state_dict']._metadata.keys() == \
        student_state._metadata.keys()
    assert converted['meta']['kd_source'] == osp.abspath(kd_ckpt)

    cfg = Config.fromfile(_student_config(tmp_path / 'student_cfg.py'))
    cfg.work_dir = str(tmp_path / 'plain')
    plain = Runner.from_cfg(cfg)
    plain.load_checkpoint(out, strict=True)
    runner.model.eval()
    plain.model.eval()
    with torch.no_grad():
        for batch in runner.test_dataloader:
            kd_out = runner.model.test_step(copy.deepcopy(batch))
            st_out = plain.model.test_step(copy.deepcopy(batch))
            for a, b in zip(kd_out, st_out):
                assert torch.equal(a.pred_heatmap, b.pred_heatmap)

    # tools/test.py with the plain config gives the student's metric
    kd_metrics = runner.test()
    proc = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'test.py'),
         str(tmp_path / 'student_cfg.py'), out, '--work-dir',
         str(tmp_path / 'plain_tool')],
        cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    found = re.findall(r'toy/mae: ([0-9.]+)', proc.stdout + proc.stderr)
    assert found, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert float(found[-1]) == pytest.approx(kd_metrics['toy/mae'],
                                             abs=1e-4)


def test_converter_refuses_non_kd_checkpoints(tmp_path):
    from mtl_fusion.models.algorithms import convert_kd_checkpoint
    plain = str(tmp_path / 'plain.pth')
    torch.save(dict(state_dict={'backbone.w': torch.zeros(1)}), plain)
    with pytest.raises(KeyError, match="'student.'"):
        convert_kd_checkpoint(plain, str(tmp_path / 'out.pth'))
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        convert_kd_checkpoint(str(tmp_path / 'missing.pth'),
                              str(tmp_path / 'out.pth'))
