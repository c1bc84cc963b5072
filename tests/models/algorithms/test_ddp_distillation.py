"""Two CPU processes (gloo) train a DistillationAlgorithm under
MMDistributedDataParallel: the teachers are left out of DDP (never
all-reduced, never broadcast), stay bit-identical to their checkpoint on
both ranks, and the students stay identical across ranks."""
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from kd_toy import algorithm_cfg, make_batch, save_teacher

STEPS = 3


def _worker(rank: int, world: int, port: int, ckpt: str, out_dir: str):
    import torch.distributed as dist
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world)
    torch.set_num_threads(1)
    try:
        from mmdet3d.registry import MODELS
        from mmdet3d.utils import register_all_modules
        from mmengine.model import MMDistributedDataParallel
        from mmengine.optim import OptimWrapper

        import mtl_fusion  # noqa: F401
        register_all_modules(init_default_scope=True)
        torch.manual_seed(0)
        model = MODELS.build(algorithm_cfg(ckpt))
        ddp = MMDistributedDataParallel(module=model)
        ignored = set(ddp.parameters_to_ignore)
        optim = OptimWrapper(
            torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9))
        for step in range(STEPS):
            inputs, samples = make_batch(2, seed=10 * step + rank)
            ddp.train_step(dict(inputs=inputs, data_samples=samples),
                           optim_wrapper=optim)
        torch.save(
            dict(student={k: v.detach().clone()
                          for k, v in model.student.named_parameters()},
                 teacher={k: v.detach().clone() for k, v in
                          model.teachers['big'].state_dict().items()},
                 ignored=sorted(ignored),
                 teacher_keys=sorted(
                     'teachers.big.' + k for k, _ in
                     list(model.teachers['big'].named_parameters()) +
                     list(model.teachers['big'].named_buffers()))),
            os.path.join(out_dir, f'rank{rank}.pth'))
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_process_gloo_teachers_frozen_and_identical(tmp_path):
    ckpt = str(tmp_path / 'teacher.pth')
    save_teacher(ckpt)
    mp.spawn(_worker, args=(2, _free_port(), ckpt, str(tmp_path)),
             nprocs=2, join=True)
    r0 = torch.load(tmp_path / 'rank0.pth', weights_only=True)
    r1 = torch.load(tmp_path / 'rank1.pth', weights_only=True)
    # DDP ignores every teacher parameter and buffer
    assert set(r0['teacher_keys']) <= set(r0['ignored'])
    assert r0['teacher_keys']
    reference = torch.load(ckpt, weights_only=True)['state_dict']
    for key, value in reference.items():
        assert torch.equal(r0['teacher'][key], value), key
        assert torch.equal(r1['teacher'][key], value), key
    # the students trained on different data, gradients averaged by DDP
    # (BN running statistics are per rank, so parameters only)
    for key, value in r0['student'].items():
        assert torch.equal(value, r1['student'][key]), key
    from kd_toy import KDToyNet
    initial = KDToyNet(channels=4, seed=0)
    assert not torch.equal(r0['student']['neck.weight'], initial.neck.weight)
