"""Two CPU processes (gloo): the gate measured at the inputs of an attention
fuser, under MMDistributedDataParallel, equals one process on the
concatenated batch (per-sample mean losses, equal per-rank batches: the
input-gradient norm of the concatenated batch is sqrt(sum_r n_r^2) / world),
and DDP's own reducer averages the calibrated gradients."""
import copy
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from fuser_gate_toys import AttentionToy, attention_batch

STEPS = 3
CALIB = dict(tasks=['det', 'seg'], shared_layer='shared', fuser='fuser',
             gate=dict(alpha=0.1, momentum=0.2))


def _model():
    torch.manual_seed(0)
    return AttentionToy()


def _wrapper(model):
    from mtl_fusion.engine import FullerOptimWrapper
    return FullerOptimWrapper(
        torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9),
        calibration=copy.deepcopy(CALIB))


def _batch(step, rank):
    return attention_batch(100 * step + rank, n=3)


def _worker(rank: int, world: int, port: int, out_dir: str):
    import torch.distributed as dist
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world)
    torch.set_num_threads(1)
    try:
        import mtl_fusion  # noqa: F401
        from mmengine.model import MMDistributedDataParallel
        model = _model()
        ddp = MMDistributedDataParallel(module=model)
        ow = _wrapper(model)
        ow.initialize_count_status(ddp, 0, STEPS)
        history = []
        for step in range(STEPS):
            ddp.train_step(_batch(step, rank), optim_wrapper=ow)
            history.append(copy.deepcopy(ow.last_calibration))
        torch.save(
            dict(params={n: p.detach().clone()
                         for n, p in model.named_parameters()},
                 history=history), os.path.join(out_dir, f'rank{rank}.pth'))
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_input_gate_two_processes_match_concatenated_batch(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2,
             join=True)
    r0 = torch.load(tmp_path / 'rank0.pth')
    r1 = torch.load(tmp_path / 'rank1.pth')
    assert r0['history'] == r1['history']
    model = _model()
    ow = _wrapper(model)
    ow.initialize_count_status(model, 0, STEPS)
    for step in range(STEPS):
        parts = [_batch(step, r) for r in range(2)]
        batch = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
        model.train_step(batch, optim_wrapper=ow)
        dist_info = r0['history'][step]
        single = ow.last_calibration
        assert single['modal_grad_norms'] == pytest.approx(
            dist_info['modal_grad_norms'], rel=1e-5)
        assert single['gate_weights'] == pytest.approx(
            dist_info['gate_weights'], abs=1e-6)
        assert single['weights'] == pytest.approx(dist_info['weights'],
                                                  abs=1e-6)
    assert min(single['gate_weights'].values()) < 1.0
    for name, p in model.named_parameters():
        assert torch.equal(r0['params'][name], r1['params'][name]), name
        torch.testing.assert_close(p.detach(), r0['params'][name],
                                   atol=1e-6, rtol=1e-5, msg=name)
