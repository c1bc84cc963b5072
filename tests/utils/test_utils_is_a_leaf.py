"""``mtl_fusion.utils`` is a leaf: it imports no other mtl_fusion package.

As in mmdet3d, components (``models``, ``datasets``, ...) may use ``utils``
but not the other way round; analysis code lives in ``mtl_fusion.analysis``
and ``mtl_fusion.benchmark``. Checked on the source, by reading every import
statement (also the ones inside functions).
"""
import ast
import glob
import os.path as osp

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
UTILS = osp.join(REPO, 'mtl_fusion', 'utils')


def _imports(path):
    """``(lineno, absolute module)`` of every import in ``path``."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    package = 'mtl_fusion.utils'
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against mtl_fusion.utils
                parts = package.split('.')
                base = parts[:len(parts) - node.level + 1]
                module = '.'.join(base + ([node.module] if node.module else
                                          []))
            else:
                module = node.module or ''
            yield node.lineno, module


def _outside_utils(module):
    return (module == 'mtl_fusion'
            or (module.startswith('mtl_fusion.')
                and not (module == 'mtl_fusion.utils'
                         or module.startswith('mtl_fusion.utils.'))))


def test_utils_imports_nothing_else_of_the_package():
    files = sorted(glob.glob(osp.join(UTILS, '**', '*.py'), recursive=True))
    assert osp.join(UTILS, '__init__.py') in files and len(files) > 3
    offending = [
        f'{osp.relpath(path, REPO)}:{lineno} imports {module}'
        for path in files for lineno, module in _imports(path)
        if _outside_utils(module)
    ]
    assert offending == []


def test_the_scanner_sees_relative_and_absolute_imports(tmp_path):
    """The check itself catches both spellings of a forbidden import."""
    path = tmp_path / 'probe.py'
    path.write_text('from ..models import x\nimport mtl_fusion.engine\n'
                    'from . import config\nfrom .compat import y\n'
                    'def f():\n    from mtl_fusion.datasets import z\n')
    found = sorted(m for _, m in _imports(str(path)))
    assert [m for m in found if _outside_utils(m)] == [
        'mtl_fusion.datasets', 'mtl_fusion.engine', 'mtl_fusion.models'
    ]
    assert 'mtl_fusion.utils' in found and 'mtl_fusion.utils.compat' in found
