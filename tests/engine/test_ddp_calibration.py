"""Two CPU processes (gloo) with MMDistributedDataParallel and
FullerOptimWrapper: identical ranks, and equal to one process on the
concatenated batch (all toy losses are per-sample means and the per-rank
batches have equal size, so the averaged per-task gradients, the averaged
intra-layer gradient and the averaged final gradients are exactly those of
the concatenated batch)."""
import copy
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from calib_toy_model import CALIB_CFG, make_batch, make_model

STEPS = 3
PER_RANK = 3


def _batch(step: int, rank: int):
    return make_batch(n=PER_RANK, seed=100 * step + rank)


def _make_wrapper(model, accumulative_counts=1):
    from mtl_fusion.engine import FullerOptimWrapper
    return FullerOptimWrapper(
        torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9),
        accumulative_counts=accumulative_counts,
        clip_grad=dict(max_norm=1.0),
        calibration=copy.deepcopy(CALIB_CFG))


def _worker(rank: int, world: int, port: int, out_dir: str):
    import torch.distributed as dist
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world)
    torch.set_num_threads(1)
    try:
        import mtl_fusion  # noqa: F401 (registries, compat shims)
        from mmengine.model import MMDistributedDataParallel
        model = make_model()
        ddp = MMDistributedDataParallel(module=model)
        ow = _make_wrapper(model)
        ow.initialize_count_status(ddp, 0, STEPS)
        assert ow._distributed
        history = []
        for step in range(STEPS):
            ddp.train_step(_batch(step, rank), optim_wrapper=ow)
            history.append(copy.deepcopy(ow.last_calibration))
        # gradient accumulation: local accumulation, one average per update
        model2 = make_model()
        ddp2 = MMDistributedDataParallel(module=model2)
        ow2 = _make_wrapper(model2, accumulative_counts=2)
        ow2.initialize_count_status(ddp2, 0, 2 * STEPS)
        for step in range(2 * STEPS):
            ddp2.train_step(_batch(step, rank), optim_wrapper=ow2)
        torch.save(
            dict(params={n: p.detach().clone()
                         for n, p in model.named_parameters()},
                 accum_params={n: p.detach().clone()
                               for n, p in model2.named_parameters()},
                 gate=ow.gate.state_dict(), history=history),
            os.path.join(out_dir, f'rank{rank}.pth'))
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_process_gloo_matches_concatenated_batch(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2,
             join=True)
    r0 = torch.load(tmp_path / 'rank0.pth')
    r1 = torch.load(tmp_path / 'rank1.pth')
    for name, value in r0['params'].items():
        assert torch.equal(value, r1['params'][name]), name
    assert r0['gate'] == r1['gate'] and r0['history'] == r1['history']
    assert r0['gate']['num_updates'] == STEPS

    # single process on the concatenated batch
    model = make_model()
    ow = _make_wrapper(model)
    ow.initialize_count_status(model, 0, STEPS)
    history = []
    for step in range(STEPS):
        parts = [_batch(step, r) for r in range(2)]
        batch = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
        model.train_step(batch, optim_wrapper=ow)
        history.append(copy.deepcopy(ow.last_calibration))
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), r0['params'][name],
                                   atol=1e-6, rtol=1e-5, msg=name)
    for single, dist_info in zip(history, r0['history']):
        for task in ('det', 'seg'):
            assert single['weights'][task] == pytest.approx(
                dist_info['weights'][task], abs=1e-6)
        for mod in ('camera', 'lidar'):
            assert single['gate_weights'][mod] == pytest.approx(
                dist_info['gate_weights'][mod], abs=1e-6)
    assert ow.gate.weights['lidar'] == pytest.approx(
        r0['gate']['weights']['lidar'], abs=1e-6)

    # accumulative_counts=2 under DDP == single process on concatenated
    # batches with the same accumulation
    for name, value in r0['accum_params'].items():
        assert torch.equal(value, r1['accum_params'][name]), name
    model = make_model()
    ow = _make_wrapper(model, accumulative_counts=2)
    ow.initialize_count_status(model, 0, 2 * STEPS)
    for step in range(2 * STEPS):
        parts = [_batch(step, r) for r in range(2)]
        batch = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
        model.train_step(batch, optim_wrapper=ow)
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), r0['accum_params'][name],
                                   atol=1e-6, rtol=1e-5, msg=name)
