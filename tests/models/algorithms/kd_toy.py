"""Toy student / teacher models, data and metric for the distillation
tests: a conv-BN-ReLU backbone, a 1x1 neck and a dense head with a
heatmap and a regression map, in the mmengine ``forward(inputs,
data_samples, mode)`` shape (``loss`` / ``predict`` / ``tensor``)."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet3d.registry import DATASETS, METRICS, MODELS
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from mmengine.structures import BaseDataElement

# the distillation components register on import of their subpackages
from mtl_fusion.models import (algorithms, connectors,  # noqa: F401
                               distillers, losses, recorders)

IN_CHANNELS = 3
NUM_CLASSES = 2
SIZE = 6


class KDToyHead(nn.Module):
    """Dense head: ``heatmap`` (B, K, H, W) logits, ``reg`` (B, 2, H, W)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.heatmap = nn.Conv2d(channels, NUM_CLASSES, 1)
        self.reg = nn.Conv2d(channels, 2, 1)

    def forward(self, feat):
        return dict(heatmap=self.heatmap(feat), reg=self.reg(feat))

    def get_target(self, sample):
        """The sample's target heatmap (K, H, W)."""
        return sample.heatmap


@MODELS.register_module(force=True)
class KDToyNet(BaseModel):
    """A tiny dense detector; ``channels`` sets its width."""

    def __init__(self, channels: int = 8, seed: int = 0,
                 data_preprocessor=None, init_cfg=None) -> None:
        super().__init__(
            data_preprocessor=data_preprocessor
            or dict(type='BaseDataPreprocessor'),
            init_cfg=init_cfg)
        gen = torch.Generator().manual_seed(seed)
        self.backbone = nn.Sequential(
            nn.Conv2d(IN_CHANNELS, channels, 3, padding=1),
            nn.BatchNorm2d(channels), nn.ReLU())
        self.neck = nn.Conv2d(channels, channels, 1)
        self.head = KDToyHead(channels)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)

    @staticmethod
    def _imgs(inputs):
        imgs = inputs['imgs'] if isinstance(inputs, dict) else inputs
        if isinstance(imgs, (list, tuple)):
            imgs = torch.stack(list(imgs))
        return imgs

    def extract_feat(self, inputs):
        return self.neck(self.backbone(self._imgs(inputs)))

    def loss(self, inputs, data_samples):
        preds = self.head(self.extract_feat(inputs))
        target = torch.stack([self.head.get_target(s) for s in data_samples])
        reg_target = torch.stack([s.reg for s in data_samples])
        return {
            'det.loss_heatmap':
            F.binary_cross_entropy_with_logits(preds['heatmap'], target),
            'det.loss_reg': F.l1_loss(preds['reg'], reg_target),
        }

    def predict(self, inputs, data_samples):
        preds = self.head(self.extract_feat(inputs))
        out = []
        for i, sample in enumerate(data_samples):
            result = sample.clone() if sample is not None else \
                BaseDataElement()
            result.pred_heatmap = preds['heatmap'][i].sigmoid()
            out.append(result)
        return out

    def forward(self, inputs, data_samples=None, mode='tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        return self.head(self.extract_feat(inputs))


def make_sample(seed: int):
    """One (inputs, data sample) pair."""
    gen = torch.Generator().manual_seed(seed)
    img = torch.randn(IN_CHANNELS, SIZE, SIZE, generator=gen)
    heatmap = torch.zeros(NUM_CLASSES, SIZE, SIZE)
    cls = int(torch.randint(NUM_CLASSES, (1, ), generator=gen))
    y, x = torch.randint(1, SIZE - 1, (2, ), generator=gen).tolist()
    heatmap[cls, y - 1:y + 2, x - 1:x + 2] = 0.5
    heatmap[cls, y, x] = 1.0
    sample = BaseDataElement(
        heatmap=heatmap, reg=torch.randn(2, SIZE, SIZE, generator=gen))
    return img, sample


def make_batch(n: int = 2, seed: int = 0):
    """A preprocessed batch: ``(dict(imgs=(n, C, H, W)), samples)``."""
    imgs, samples = zip(*[make_sample(seed * 1000 + i) for i in range(n)])
    return dict(imgs=torch.stack(imgs)), list(samples)


@DATASETS.register_module(force=True)
class KDToyDataset(torch.utils.data.Dataset):
    """``n`` fixed samples in the mmengine dataset format."""

    def __init__(self, n: int = 8, seed: int = 0) -> None:
        self.items = [make_sample(seed * 1000 + i) for i in range(n)]
        self.metainfo = dict(classes=('a', 'b'))

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        img, sample = self.items[i]
        return dict(inputs=dict(imgs=img), data_samples=sample)


@METRICS.register_module(force=True)
class KDToyMetric(BaseMetric):
    """Mean absolute error of the predicted heatmap (``mae``)."""

    default_prefix = 'toy'

    def process(self, data_batch, data_samples):
        # the Evaluator hands over the data samples as dicts
        for sample in data_samples:
            self.results.append(
                float((sample['pred_heatmap'] -
                       sample['heatmap']).abs().mean()))

    def compute_metrics(self, results):
        return dict(mae=sum(results) / len(results))


def save_teacher(path, channels: int = 8, seed: int = 1):
    """Write a teacher checkpoint in mmengine's layout; returns its model."""
    teacher = KDToyNet(channels=channels, seed=seed)
    torch.save(dict(meta=dict(), state_dict=teacher.state_dict()), path)
    return teacher


def teacher_cfg(channels: int = 8, seed: int = 1):
    return dict(type='KDToyNet', channels=channels, seed=seed)


def algorithm_cfg(ckpt, student_channels=4, teacher_channels=8, **kwargs):
    """A one-teacher algorithm: BEV-feature MSE through a 1x1 connector,
    heatmap QFL, regression at GT centres (positions from the student's
    target builder)."""
    cfg = dict(
        type='DistillationAlgorithm',
        student=dict(type='KDToyNet', channels=student_channels, seed=0),
        teachers=dict(
            big=dict(config=teacher_cfg(teacher_channels), checkpoint=ckpt)),
        distiller=dict(
            type='ConfigurableDistiller',
            student_recorders=dict(
                feat=dict(type='ModuleOutputs', source='neck'),
                heatmap=dict(type='ModuleOutputs', source='head',
                             index='heatmap'),
                reg=dict(type='ModuleOutputs', source='head', index='reg'),
                gt=dict(type='MethodOutputs', source='head.get_target')),
            teacher_recorders=dict(
                big=dict(
                    feat=dict(type='ModuleOutputs', source='neck'),
                    heatmap=dict(type='ModuleOutputs', source='head',
                                 index='heatmap'),
                    reg=dict(type='ModuleOutputs', source='head',
                             index='reg'))),
            connectors=dict(
                feat=dict(type='ConvConnector', in_channels=student_channels,
                          out_channels=teacher_channels)),
            loss_mappings=[
                dict(name='loss_feat', loss=dict(type='FeatureMSELoss'),
                     student='feat', connector='feat', teacher='big.feat',
                     inputs=dict(mask=dict(recorder='student.gt',
                                           call='stack'))),
                dict(name='loss_heatmap',
                     loss=dict(type='HeatmapQualityFocalLoss'),
                     student='heatmap', teacher='heatmap', weight=2.0),
                dict(name='loss_reg',
                     loss=dict(type='GTPositionRegressionLoss'),
                     student='reg', teacher='big.reg',
                     inputs=dict(positions=dict(recorder='student.gt',
                                                call='stack'))),
            ]))
    cfg.update(kwargs)
    return cfg
