"""VGG with batch norm for 32x32 images (the CIFAR variant), any input channels, any width.

Simonyan & Zisserman, *Very Deep Convolutional Networks for Large-Scale Image
Recognition*, arXiv:1409.1556, 2014. The layer configurations are torchvision's
(``torchvision.models.vgg.cfgs``: "A" = VGG-11, "B" = VGG-13, "D" = VGG-16, "E" =
VGG-19), not retyped here. Each number is a 3x3 convolution (padding 1) followed by
batch norm and ReLU; "M" is a 2x2 max-pool. After the five pools a 32x32 input is 1x1, so
the CIFAR variant (as in kuangliu/pytorch-cifar and geifmany/cifar-vgg) replaces
ImageNet's 7x7x512 -> 4096 -> 4096 head by one linear layer from the 512 channels.

``width`` multiplies every channel count (rounded, at least 1): VGG-16 at width 0.25 has
the same depth with 16..128 channels, for CPU-sized studies.

Parameter count of VGG-16, width 1, 3 input channels, 10 classes::

    convs  sum 9*c_in*c_out + c_out  = 14,714,688
    BN     sum 2*c_out (4,224 ch.)   =      8,448
    linear 512*10 + 10               =      5,130
    total                            = 14,728,266
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.vgg import cfgs as _TORCHVISION_VGG_CFGS

__all__ = ["VGG", "VGG_CONFIGS", "build_model"]

#: Depth name -> torchvision's layer configuration (channel counts and "M" for max-pool).
VGG_CONFIGS: dict[str, list] = {
    "vgg11": _TORCHVISION_VGG_CFGS["A"],
    "vgg13": _TORCHVISION_VGG_CFGS["B"],
    "vgg16": _TORCHVISION_VGG_CFGS["D"],
    "vgg19": _TORCHVISION_VGG_CFGS["E"],
}


class VGG(nn.Module):
    """Conv stack (3x3 conv, BN, ReLU; max-pools) then ``Linear(channels, num_classes)``.

    Args:
        layers: a torchvision VGG configuration (ints and "M").
        in_channels: 3 for CIFAR-10, 1 for Fashion-MNIST.
        num_classes: outputs of the classifier.
        width: channel multiplier, > 0.
        generator: a CPU ``torch.Generator`` for the initial weights (default: torch's
            global generator). With one, the weights depend on it alone and torch's global
            random state is left as it was.

    Initialisation as torchvision's VGG: Kaiming normal (fan-out, ReLU) convolutions,
    BN weight 1 and bias 0, linear weights N(0, 0.01^2) and zero biases.
    """

    def __init__(
        self,
        layers: list,
        *,
        in_channels: int = 3,
        num_classes: int = 10,
        width: float = 1.0,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        if not width > 0:
            raise ValueError(f"width must be > 0, got {width!r}")
        with torch.random.fork_rng(devices=[], enabled=generator is not None):
            self._build(layers, in_channels, num_classes, width)  # layer constructors draw from the global RNG
        self._init_weights(generator)

    def _build(self, layers: list, in_channels: int, num_classes: int, width: float) -> None:
        modules: list[nn.Module] = []
        c = in_channels
        for v in layers:
            if v == "M":
                modules.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                out = max(1, round(v * width))
                modules += [nn.Conv2d(c, out, kernel_size=3, padding=1), nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
                c = out
        self.features = nn.Sequential(*modules)
        self.classifier = nn.Linear(c, num_classes)

    def _init_weights(self, generator: torch.Generator | None) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu", generator=generator)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01, generator=generator)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (B, C, 1, 1) for a 32x32 input
        return self.classifier(torch.flatten(x, 1))


def build_model(
    name: str,
    *,
    in_channels: int = 3,
    num_classes: int = 10,
    width: float = 1.0,
    generator: torch.Generator | None = None,
) -> VGG:
    """``build_model("vgg16", width=0.25)``: a VGG of :data:`VGG_CONFIGS` by name (see :class:`VGG`)."""
    if name not in VGG_CONFIGS:
        raise ValueError(f"model must be one of {', '.join(VGG_CONFIGS)}, got {name!r}")
    return VGG(VGG_CONFIGS[name], in_channels=in_channels, num_classes=num_classes, width=width, generator=generator)
