"""Layers that build graph and own their params, as a PyTorch user would name them.

`model(x, training=True)` builds the training graph (dropout on), `model(x)` the
evaluation graph; both share the model's params (`model.params()`)."""

from graphc.nn.activation import GELU, ReLU, Sigmoid, Tanh
from graphc.nn.attention import MultiHeadAttention, MultiheadAttention
from graphc.nn.container import Sequential
from graphc.nn.conv import AvgPool2d, Conv2d, Flatten, MaxPool2d
from graphc.nn.dropout import Dropout
from graphc.nn.embedding import Embedding
from graphc.nn.init import manual_seed
from graphc.nn.linear import Linear
from graphc.nn.module import Module
from graphc.nn.norm import (
    BatchNorm1d,
    BatchNorm2d,
    GroupNorm,
    InstanceNorm1d,
    InstanceNorm2d,
    LayerNorm,
    RMSNorm,
)
from graphc.nn.transformer import (
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
)

__all__ = [
    "BatchNorm1d", "BatchNorm2d", "GroupNorm", "InstanceNorm1d", "InstanceNorm2d", "RMSNorm",
    "AvgPool2d", "Conv2d", "Dropout", "Embedding", "Flatten", "GELU", "LayerNorm", "Linear",
    "MaxPool2d", "Module", "MultiHeadAttention",
    "MultiheadAttention", "ReLU", "Sequential", "Sigmoid", "Tanh",
    "TransformerDecoder", "TransformerDecoderLayer", "TransformerEncoder",
    "TransformerEncoderLayer", "manual_seed",
]
