"""tools/benchmark_distill.py on the tiny distillation config.

One repetition on random inputs: the JSON structure, positive finite
timings, and the memory facts that do not depend on machine load: the
teachers as the step runs them take no more memory than their inference,
an autograd-on forward of the same teacher takes clearly more (so the
measurement sees kept activations), and the recorded bytes are those of
the recorded tensors.
"""
import importlib.util
import json
import os.path as osp

import pytest
import torch

from mtl_fusion import benchmark as bm

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
KD = osp.join(REPO, 'configs/distill',
              'kd_tiny-lidar-det-to-cam-det_1xb2-600i_synthetic-nus.py')
STUDENT = osp.join(REPO, 'configs/distill',
                   'fuller_tiny-cam-det_1xb2-600i_synthetic-nus.py')


def _load_tool():
    spec = importlib.util.spec_from_file_location(
        'benchmark_distill', osp.join(REPO, 'tools/benchmark_distill.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_distill_benchmark_tool(tmp_path):
    tool = _load_tool()
    out = tmp_path / 'kd.json'
    result = tool.main([
        KD, '--random-teachers', '--iters', '1', '--warmup', '0',
        '--data', 'random', '--num-points', '4000', '--threads', '1',
        '--out', str(out)
    ])
    saved = json.loads(out.read_text())
    assert saved['meta']['random_teachers'] is True
    assert set(saved['step_time_s']) == {'distill', 'student', 'teacher'}
    for value in saved['step_time_s'].values():
        assert bm.is_positive_finite(value['summary']['median'])
    assert bm.is_positive_finite(saved['ratios']['step_time']['median'])
    memory = result['ratios']
    assert memory['teacher_memory'] <= 1.1
    assert memory['teacher_memory_with_grad'] > 1.5
    assert saved['memory']['teacher_records_bytes'] > 0
    assert [t['key'] for t in result['targets']] == [
        'step_time', 'teacher_memory'
    ]


def test_record_bytes_counts_each_tensor_once():
    from mtl_fusion.benchmark.distillation import _record_bytes

    class Recorder:
        def __init__(self, data):
            self.data = data

    class Manager:
        def __init__(self, recorders):
            self.recorders = recorders

    shared = torch.zeros(10)  # float32: 40 bytes
    algo = type('Algo', (), {})()
    algo.distiller = type('D', (), {})()
    algo.distiller.teacher_recorders = dict(lidar=Manager(dict(
        a=Recorder([shared, dict(x=torch.zeros(2, 3, dtype=torch.float64))]),
        b=Recorder([(shared, )]))))
    assert _record_bytes(algo) == 40 + 6 * 8


def test_rejects_a_plain_model_config():
    tool = _load_tool()
    with pytest.raises(ValueError, match='not DistillationAlgorithm'):
        tool.main([STUDENT, '--iters', '1', '--data', 'random'])
    with pytest.raises(SystemExit):
        tool.parse_args([KD, '--iters', '0'])
