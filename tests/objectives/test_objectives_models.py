"""objectives.models: the CIFAR VGG variants, torchvision's layer configurations, width."""

import pytest
import torch
from torchvision.models.vgg import cfgs

from objectives.models import VGG_CONFIGS, build_model


def n_params(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name, convs", [("vgg11", 8), ("vgg13", 10), ("vgg16", 13), ("vgg19", 16)])
def test_each_depth_maps_32x32_images_to_logits(name, convs):
    model = build_model(name, in_channels=1, num_classes=7, width=0.125).eval()
    assert model(torch.zeros(3, 1, 32, 32)).shape == (3, 7)
    assert sum(isinstance(m, torch.nn.Conv2d) for m in model.modules()) == convs
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) == convs
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in model.modules()) == 5


def test_layer_configurations_are_torchvisions():
    assert VGG_CONFIGS == {"vgg11": cfgs["A"], "vgg13": cfgs["B"], "vgg16": cfgs["D"], "vgg19": cfgs["E"]}


def test_vgg16_bn_width_1_has_14_728_266_parameters():
    # convs: sum over the 13 layers of 9*c_in*c_out + c_out, channels 3-64-64 | 128 128 | 256 x3 | 512 x3 | 512 x3
    convs = sum(
        9 * a * b + b
        for a, b in [
            (3, 64),
            (64, 64),
            (64, 128),
            (128, 128),
            (128, 256),
            (256, 256),
            (256, 256),
            (256, 512),
            (512, 512),
            (512, 512),
            (512, 512),
            (512, 512),
            (512, 512),
        ]
    )
    assert convs == 14_714_688
    bn = 2 * (2 * 64 + 2 * 128 + 3 * 256 + 6 * 512)  # weight and bias per channel: 8,448
    linear = 512 * 10 + 10
    assert convs + bn + linear == 14_728_266
    assert n_params(build_model("vgg16", in_channels=3, num_classes=10, width=1.0)) == 14_728_266


def test_width_multiplies_every_channel_count():
    model = build_model("vgg16", in_channels=1, width=0.25)
    widths = [m.out_channels for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert widths == [16, 16, 32, 32, 64, 64, 64, 128, 128, 128, 128, 128, 128]
    assert model.classifier.in_features == 128
    # 9*1*16+16 + 9*16*16+16 + ... computed from the list above, plus BN 2*c and the linear layer
    chans = [1] + widths
    expected = sum(9 * a * b + b + 2 * b for a, b in zip(chans, chans[1:])) + 128 * 10 + 10
    assert n_params(model) == expected == 923_898


def test_unknown_model_and_bad_width_are_rejected():
    with pytest.raises(ValueError, match=r"model must be one of vgg11, vgg13, vgg16, vgg19, got 'vgg8'"):
        build_model("vgg8")
    with pytest.raises(ValueError, match=r"width must be > 0, got 0"):
        build_model("vgg11", width=0)


def test_initialisation_is_seeded():
    torch.manual_seed(3)
    a = build_model("vgg11", width=0.125)
    torch.manual_seed(3)
    b = build_model("vgg11", width=0.125)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_a_generator_fixes_the_weights_and_leaves_the_global_rng_alone():
    state = torch.random.get_rng_state()
    a = build_model("vgg11", width=0.125, generator=torch.Generator().manual_seed(4))
    assert torch.equal(torch.random.get_rng_state(), state)
    torch.manual_seed(123)  # the global state does not matter
    b = build_model("vgg11", width=0.125, generator=torch.Generator().manual_seed(4))
    c = build_model("vgg11", width=0.125, generator=torch.Generator().manual_seed(5))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.classifier.weight, c.classifier.weight)
