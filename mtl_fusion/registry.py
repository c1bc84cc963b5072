"""The ``mtl_fusion`` registry scope: empty children of mmdet3d's registries.

mtl_fusion registers its components into mmdet3d's registries (the plugin
pattern; its names avoid those of mmdet3d's ``projects/``). This module adds
no registrations of its own. It exists because of ``mtl_fusion::`` config
bases: mmengine marks every dict with a ``type`` read from such a base with
``_scope_='mtl_fusion'`` and, when building it, imports
``mtl_fusion.registry`` and looks for a registry of that scope in the tree
of the registry the build started from (often mmengine's root, e.g. a
Runner building its model or dataloaders). Each registry below is a child of
the mmdet3d registry of the same name, holds nothing, and hands every lookup
to its parent, so ``_scope_='mtl_fusion'`` builds exactly what the
``mmdet3d`` scope builds. (From an mmdet3d registry a type may also be
written ``mtl_fusion.<Name>``.)
"""
from mmdet3d import registry as mmdet3d_registry
from mmengine.registry import Registry

__all__ = [
    'RUNNERS', 'RUNNER_CONSTRUCTORS', 'HOOKS', 'DATASETS', 'DATA_SAMPLERS',
    'TRANSFORMS', 'MODELS', 'MODEL_WRAPPERS', 'WEIGHT_INITIALIZERS',
    'OPTIMIZERS', 'OPTIM_WRAPPERS', 'OPTIM_WRAPPER_CONSTRUCTORS',
    'PARAM_SCHEDULERS', 'METRICS', 'EVALUATOR', 'TASK_UTILS', 'VISUALIZERS',
    'VISBACKENDS', 'LOG_PROCESSORS', 'INFERENCERS'
]

SCOPE = 'mtl_fusion'


def _child(name: str) -> Registry:
    parent = getattr(mmdet3d_registry, name)
    # A lookup that misses the child reads the parent's dict directly,
    # without the parent's lazy imports: the child imports the parent's
    # locations (e.g. mmdet3d.visualization) and mtl_fusion (which registers
    # everything of ours into the parent) itself.
    locations = list(getattr(parent, '_locations', [])) + ['mtl_fusion']
    return Registry(
        parent.name, parent=parent, scope=SCOPE, locations=locations)


RUNNERS = _child('RUNNERS')
RUNNER_CONSTRUCTORS = _child('RUNNER_CONSTRUCTORS')
HOOKS = _child('HOOKS')
DATASETS = _child('DATASETS')
DATA_SAMPLERS = _child('DATA_SAMPLERS')
TRANSFORMS = _child('TRANSFORMS')
MODELS = _child('MODELS')
MODEL_WRAPPERS = _child('MODEL_WRAPPERS')
WEIGHT_INITIALIZERS = _child('WEIGHT_INITIALIZERS')
OPTIMIZERS = _child('OPTIMIZERS')
OPTIM_WRAPPERS = _child('OPTIM_WRAPPERS')
OPTIM_WRAPPER_CONSTRUCTORS = _child('OPTIM_WRAPPER_CONSTRUCTORS')
PARAM_SCHEDULERS = _child('PARAM_SCHEDULERS')
METRICS = _child('METRICS')
EVALUATOR = _child('EVALUATOR')
TASK_UTILS = _child('TASK_UTILS')
VISUALIZERS = _child('VISUALIZERS')
VISBACKENDS = _child('VISBACKENDS')
LOG_PROCESSORS = _child('LOG_PROCESSORS')
INFERENCERS = _child('INFERENCERS')
