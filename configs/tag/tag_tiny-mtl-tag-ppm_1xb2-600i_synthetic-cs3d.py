# Table III: TAG with the aggregation nodes replaced by a pyramid pooling
# module on the deepest semantic feature.
_base_ = ['./tag_tiny-mtl-tag_1xb2-600i_synthetic-cs3d.py']

model = dict(backbone=dict(aggregation='ppm'))
