"""Disjoint labels under DDP (two gloo processes): every rank leaves out
the same tasks, and a step where no rank has seg labels equals the plain
single-task step on the concatenated batch."""
import copy
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from calib_toy_model import DisjointToy, make_batch

PER_RANK = 3
STEPS = 2
INTER = dict(tasks=['det', 'seg'], shared_layer='shared',
             weighting=dict(type='IMTLGWeighting'), gate=None)
# labels of each rank's batches, per scenario
SCENARIOS = dict(det_only=('det', 'det'), mixed=('det', 'both'))


def _batch(step, rank):
    return make_batch(n=PER_RANK, seed=10 * step + rank)


def _worker(rank, world, port, out_dir):
    import torch.distributed as dist
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world)
    torch.set_num_threads(1)
    try:
        import mtl_fusion  # noqa: F401
        from mmengine.model import MMDistributedDataParallel

        from mtl_fusion.engine import FullerOptimWrapper
        out = {}
        for name, labels in SCENARIOS.items():
            model = DisjointToy(labels=labels[rank])
            ddp = MMDistributedDataParallel(module=model)
            wrapper = FullerOptimWrapper(
                torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
                calibration=copy.deepcopy(INTER))
            wrapper.initialize_count_status(ddp, 0, STEPS)
            for step in range(STEPS):
                ddp.train_step(_batch(step, rank), optim_wrapper=wrapper)
            out[name] = dict(
                params={n: p.detach().clone()
                        for n, p in model.named_parameters()},
                info=copy.deepcopy(wrapper.last_calibration))
        torch.save(out, os.path.join(out_dir, f'rank{rank}.pth'))
    finally:
        dist.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ranks_agree_and_det_only_is_the_single_task_step(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2,
             join=True)
    ranks = [torch.load(tmp_path / f'rank{r}.pth') for r in range(2)]
    for name in SCENARIOS:
        a, b = ranks[0][name], ranks[1][name]
        for key, value in a['params'].items():
            assert torch.equal(value, b['params'][key]), (name, key)
        assert a['info']['weights'] == b['info']['weights'], name
    assert ranks[0]['det_only']['info']['weights'] == dict(det=1.0)
    mixed = ranks[0]['mixed']['info']
    assert mixed['tasks'] == ['det', 'seg'] and 'fallback' not in mixed

    # the plain det-only step on the concatenated batch
    from mmengine.optim import OptimWrapper
    model = DisjointToy(labels='det', report=False)
    wrapper = OptimWrapper(
        torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9))
    for step in range(STEPS):
        parts = [_batch(step, r) for r in range(2)]
        batch = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
        model.train_step(batch, optim_wrapper=wrapper)
    for key, p in model.named_parameters():
        torch.testing.assert_close(p.detach(),
                                   ranks[0]['det_only']['params'][key],
                                   atol=1e-6, rtol=1e-5, msg=key)
