"""Connectors: small trainable adapters between student and teacher
records, trained with the student."""
from .conv_bn_relu_connector import ConvBNReLUConnector
from .conv_connector import ConvConnector
from .linear_connector import LinearConnector

__all__ = ['ConvConnector', 'LinearConnector', 'ConvBNReLUConnector']
