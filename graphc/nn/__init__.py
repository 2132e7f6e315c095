"""Layers that build graph and own their params, named, laid out and defaulted as
PyTorch's, so a PyTorch state_dict converted to NumPy loads into the same architecture.

A module is in training mode when built; `model.train()` / `model.eval()` set the mode,
and `model(x)` builds the graph of the current mode (dropout on in training).
`model(x, training=False)` (or True) overrides the mode while it builds. Every graph
built shares the model's params (`model.params()`)."""

from graphc.nn.activation import (
    CELU,
    ELU,
    GELU,
    SELU,
    Hardsigmoid,
    Hardswish,
    Hardtanh,
    LeakyReLU,
    LogSigmoid,
    LogSoftmax,
    Mish,
    PReLU,
    ReLU,
    ReLU6,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Softsign,
    Tanh,
)
from graphc.nn.attention import MultiHeadAttention, MultiheadAttention
from graphc.nn.container import ModuleDict, ModuleList, Sequential
from graphc.nn.conv import Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d
from graphc.nn.dropout import Dropout, Dropout2d
from graphc.nn.embedding import Embedding
from graphc.nn.init import manual_seed
from graphc.nn.linear import Linear
from graphc.nn.loss import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    HuberLoss,
    KLDivLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
    SmoothL1Loss,
)
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
from graphc.nn.pool import (
    AdaptiveAvgPool2d,
    AdaptiveMaxPool2d,
    AvgPool1d,
    AvgPool2d,
    MaxPool1d,
    MaxPool2d,
    Upsample,
)
from graphc.nn.reshape import Flatten, Identity, Unflatten
from graphc.nn.rnn import GRU, LSTM
from graphc.nn.transformer import (
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
)

__all__ = [
    "BatchNorm1d", "BatchNorm2d", "GroupNorm", "InstanceNorm1d", "InstanceNorm2d", "RMSNorm",
    "MultiheadAttention", "TransformerDecoder", "TransformerDecoderLayer", "TransformerEncoder",
    "BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "HuberLoss", "KLDivLoss", "L1Loss",
    "MSELoss", "NLLLoss", "SmoothL1Loss",
    "CELU", "Hardsigmoid", "Hardtanh", "LogSigmoid", "ReLU6", "Softsign", "AvgPool1d",
    "MaxPool1d",
    "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "AvgPool2d", "Conv1d", "Conv2d",
    "ConvTranspose1d", "ConvTranspose2d", "Dropout", "Dropout2d", "ELU", "Embedding",
    "Flatten", "GELU", "GRU", "Hardswish", "Identity", "LSTM", "LayerNorm", "LeakyReLU", "Linear",
    "LogSoftmax", "MaxPool2d", "Mish", "Module", "ModuleDict", "ModuleList",
    "MultiHeadAttention", "PReLU", "ReLU", "SELU", "Sequential", "SiLU", "Sigmoid", "Softmax",
    "Softplus", "Tanh", "TransformerEncoderLayer", "Unflatten", "Upsample",
    "manual_seed",
]
