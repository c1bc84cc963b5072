"""DMFuser's multi-teacher distillation on the tiny models: two frozen
experts from their own checkpoints, every ``distill.*`` loss against a value
computed by hand from tensors recorded by the test's own hooks, and the
student's queries at the det expert's proposals."""
import torch
import torch.nn.functional as F

CONFIG = ('configs/dmfuser/'
          'dmfuser_tiny-fusion-mtl-attn-kd_1xb2-600i_synthetic-nus.py')
EXPERTS = dict(
    det='configs/fuller/fuller_tiny-fusion-det_1xb2-600i_synthetic-nus.py',
    seg='configs/fuller/fuller_tiny-fusion-seg_1xb2-600i_synthetic-nus.py')


def _outputs(module, store, key):
    return module.register_forward_hook(
        lambda m, args, out: store.setdefault(key, out))


def test_multi_teacher_losses_by_hand(synthetic_nuscenes, tmp_path, seed):
    from mtl_fusion.benchmark.inputs import make_batches
    from mtl_fusion.benchmark.setup import build_model, load_config
    from mtl_fusion.benchmark.training import fresh_batch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        checkpoints = {}
        expert_states = {}
        for i, (name, path) in enumerate(EXPERTS.items()):
            cfg = load_config(path, data_root=synthetic_nuscenes)
            expert = build_model(cfg, torch.device('cpu'), seed=10 + i)
            checkpoints[name] = str(tmp_path / f'{name}.pth')
            expert_states[name] = {
                k: v.clone() for k, v in expert.state_dict().items()}
            torch.save(dict(state_dict=expert.state_dict(), meta={}),
                       checkpoints[name])
        cfg = load_config(CONFIG, data_root=synthetic_nuscenes)
        for name, path in checkpoints.items():
            cfg.model.teachers[name].checkpoint = path
        model = build_model(cfg, torch.device('cpu'), seed=0)
        model.train()
        batch = make_batches(cfg, 'synthetic', 2, 1, split='train')[0]
        student, teachers = model.student, model.teachers
        rec = {}
        hooks = [
            _outputs(student.bev_neck, rec, 's_bev'),
            _outputs(student.task_heads.det, rec, 's_det'),
            _outputs(student.task_heads.seg, rec, 's_seg'),
            _outputs(teachers.det.bev_neck, rec, 'det_bev'),
            _outputs(teachers.det.task_heads.det, rec, 'det_det'),
            _outputs(teachers.seg.bev_neck, rec, 'seg_bev'),
            _outputs(teachers.seg.task_heads.seg, rec, 'seg_seg'),
        ]
        gt = []
        original = student.task_heads.det.get_heatmap_target

        def keep_gt(*args, **kwargs):
            out = original(*args, **kwargs)
            gt.append(out)
            return out

        student.task_heads.det.get_heatmap_target = keep_gt
        data = model.data_preprocessor(fresh_batch(batch), True)
        losses = model(**data, mode='loss')
        for h in hooks:
            h.remove()
        del student.task_heads.det.get_heatmap_target
        # teachers: frozen, eval mode, loaded from their own checkpoints
        for name, teacher in teachers.items():
            assert not teacher.training
            assert all(not p.requires_grad for p in teacher.parameters())
            for key, value in teacher.state_dict().items():
                torch.testing.assert_close(value, expert_states[name][key])
        # the student's det queries are the det expert's proposals
        assert torch.equal(rec['s_det']['query_labels'],
                           rec['det_det']['query_labels'])

        conn = model.distiller.connectors
        with torch.no_grad():
            s_bev = rec['s_bev'][0]
            # det features: MSE under the GT Gaussian heatmap (max over
            # classes), mean over channels and weighted cells
            mask = torch.stack(gt).amax(1, keepdim=True)
            err = (conn['det_adapter'](s_bev) - rec['det_bev'][0])**2
            feat_det = (err * mask).sum() / (mask.sum() * err.shape[1])
            feat_seg = ((conn['seg_adapter'](s_bev) -
                         rec['seg_bev'][0])**2).mean()
            p = rec['s_det']['dense_heatmap'].sigmoid()
            q = rec['det_det']['dense_heatmap'].sigmoid()
            heat = (F.binary_cross_entropy(p, q, reduction='none') *
                    (q - p).abs()**2).mean() * 10.0
            keys = ('center', 'height', 'dim', 'rot', 'vel')
            s_code = torch.cat([rec['s_det'][k] for k in keys], 1)
            t_code = torch.cat([rec['det_det'][k] for k in keys], 1)
            w = rec['det_det']['cls_logits'].sigmoid().amax(1)  # (B, K)
            box = ((s_code - t_code).abs().mean(1) * w).sum() / w.sum()
            mask_kd = F.binary_cross_entropy_with_logits(
                rec['s_seg'], rec['seg_seg'].sigmoid())
        expected = {
            'distill.loss_feat_det': feat_det,
            'distill.loss_feat_seg': feat_seg,
            'distill.loss_heatmap': heat,
            'distill.loss_box': box,
            'distill.loss_mask': mask_kd,
        }
        assert {k for k in losses if k.startswith('distill.')} == set(
            expected)
        for key, value in expected.items():
            torch.testing.assert_close(
                losses[key].detach(), value, rtol=1e-4,
                atol=1e-6, msg=key)
        # the student keeps both task losses; gradients reach the adapters
        assert {'det.loss_heatmap', 'seg.loss_focal'} <= set(losses)
        sum(v for k, v in losses.items() if 'loss' in k).backward()
        for name in ('det_adapter', 'seg_adapter'):
            assert conn[name].conv.weight.grad.abs().sum() > 0
        assert all(p.grad is None for p in teachers.parameters())
        # predict: the student alone, its own proposals
        model.eval()
        with torch.no_grad():
            results = model(**model.data_preprocessor(fresh_batch(batch),
                                                      False),
                            mode='predict')
        assert len(results) == 2 and 'pred_bev_masks' in results[0]
    finally:
        torch.set_num_threads(threads)
