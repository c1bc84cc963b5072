"""Analysis of trained models and training runs, shared by the tools.

Like ``mmengine.analysis``, this sits apart from the components: nothing in
:mod:`mtl_fusion.models` or :mod:`mtl_fusion.utils` imports it.
"""
from . import ablation  # noqa: F401  (seeds: mean ± std, tables, charts)
from . import multi_task_table  # noqa: F401  (Delta_T per seed, FLOPs)
from .calibration_curves import (PREFIX, find_scalars, load_calibration,
                                 plot_calibration)
from .demo_report import (load_run_calibration, plot_calibration_runs,
                          write_metrics_report)
from .prediction_pictures import compare_results, visualize_results
from .robustness import (apply_condition, plot_robustness,
                         robustness_conditions)

__all__ = [
    'PREFIX', 'find_scalars', 'load_calibration', 'plot_calibration',
    'visualize_results', 'compare_results', 'load_run_calibration',
    'plot_calibration_runs', 'write_metrics_report', 'robustness_conditions',
    'apply_condition', 'plot_robustness'
]
