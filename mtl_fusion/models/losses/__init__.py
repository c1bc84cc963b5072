"""Distillation losses (each takes the student record first, then the
teacher record, then optional extra inputs such as a mask)."""
from .bev_mask_distill_loss import BEVMaskDistillLoss
from .feature_mse_loss import FeatureMSELoss
from .feature_smooth_l1_loss import FeatureSmoothL1Loss
from .gt_position_regression_loss import GTPositionRegressionLoss
from .heatmap_quality_focal_loss import HeatmapQualityFocalLoss
from .query_box_distill_loss import QueryBoxDistillLoss
from .temperature_kl_div_loss import TemperatureKLDivLoss

__all__ = [
    'FeatureMSELoss', 'FeatureSmoothL1Loss', 'TemperatureKLDivLoss',
    'HeatmapQualityFocalLoss', 'GTPositionRegressionLoss',
    'BEVMaskDistillLoss', 'QueryBoxDistillLoss'
]
