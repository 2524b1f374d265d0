"""Models: the reference networks of issue 6 behind one registry, and the benchmarks' models.

    model = pyconv.models.create("lenet", in_channels=1, num_classes=10, input_size=(28, 28))
    same = pyconv.models.create(**model.config)        # same architecture (config is JSON-able)
    pyconv.models.available()                          # the names
    pyconv.models.spec("lenet").input_size             # (28, 28); also .task, .description

Inputs are NCHW float tensors. Classifiers return logits (N, num_classes), to be fed to
``cross_entropy``; the autoencoder returns images of the input's shape in [0, 1] (MSE loss).
Submodule names follow PyTorch, so a state_dict maps 1:1 onto the same model written in torch.
"""

from .registry import ModelSpec, available, create, register, spec
from .lenet import LeNetDigits, LeNetMNIST
from .keras_cnn import KerasCNN
from .cifar import CifarConvNet, CifarNet
from .mnist_cnn import MnistCNN
from .rnn_classifier import RNNClassifier
from .autoencoder import ConvAutoencoder
from .resnet import BasicBlock, ResNetMini

__all__ = [
    "BasicBlock", "CifarConvNet", "CifarNet", "ConvAutoencoder", "KerasCNN", "LeNetDigits",
    "LeNetMNIST", "MnistCNN", "ModelSpec", "RNNClassifier", "ResNetMini", "available", "create",
    "register", "spec",
]
