"""Names shared by the models' loss dicts and the optimizer wrappers.

A multi-task model prefixes each loss key with its task
(``'<task>.loss_cls'``). Next to its losses it may report, per task, how
many samples of the batch carry labels of that task, under
``'<task>.' + LABELLED_KEY``. The key has no ``'loss'`` in it, so
``parse_losses`` only logs it; the gradient calibration reads it to leave a
task without labels out of the step's weighting (a head returns zero losses
that are still attached to the graph for such a batch, so the losses alone
cannot tell).
"""

from typing import List, Sequence

__all__ = ['LABELLED_KEY', 'labelled_key', 'samples_with_labels']

LABELLED_KEY = 'labelled_samples'


def labelled_key(task: str) -> str:
    """The loss-dict key of ``task``'s labelled-sample count."""
    return f'{task}.{LABELLED_KEY}'


def samples_with_labels(batch_data_samples: Sequence,
                        flag: str = 'has_det_labels') -> List[int]:
    """Indices of the samples whose labels of a task a head learns from:
    all but those whose metainfo sets ``flag`` to False (disjoint labels).

    Args:
        batch_data_samples (Sequence): Data samples with ``metainfo``.
        flag (str): The metainfo flag of the task. Defaults to
            ``'has_det_labels'``.

    Returns:
        list[int]: Indices into ``batch_data_samples``.
    """
    return [
        i for i, sample in enumerate(batch_data_samples)
        if sample.metainfo.get(flag, True)
    ]
