"""The nine model-zoo networks shipped in the onnx wheel, against independent counts.

Expected figures are those of the issue ("learnable parameters; Conv+Gemm MACs without bias"),
which agree with the published counts: torchvision's ResNet-50 25,557,032 parameters and
4.09 GMACs; AlexNet 60,965,224 (Krizhevsky et al. with the Caffe grouped convolutions); VGG-19
143,667,240 (Simonyan & Zisserman, 144 M); SqueezeNet 1.0 1,235,496 (Iandola et al., 1.24 M).
"""
import os

import pytest

import onnxscore

# file, parameters (exact), GMACs (within 0.5 %)
EXPECTED = [
    ("light_bvlc_alexnet.onnx", 60_965_224, 0.655),
    ("light_densenet121.onnx", 8_062_504, 2.834),
    ("light_inception_v1.onnx", 6_998_552, 1.432),
    ("light_inception_v2.onnx", 11_214_888, 2.019),
    ("light_resnet50.onnx", 25_557_032, 4.089),
    ("light_shufflenet.onnx", 1_393_320, 0.125),
    ("light_squeezenet.onnx", 1_235_496, 0.349),
    ("light_vgg19.onnx", 143_667_240, 19.632),
    ("light_zfnet512.onnx", 87_250_536, 1.482),
]


@pytest.mark.parametrize("name, params, gmacs", EXPECTED)
def test_light_model(light_dir, name, params, gmacs):
    r = onnxscore.analyze(os.path.join(light_dir, name))
    assert r.totals.params == params
    assert r.totals.macs / 1e9 == pytest.approx(gmacs, rel=0.005)
    assert r.totals.complete, (r.unsupported_ops, r.unresolved_dims)
    assert not r.unsupported_ops


def test_resnet50_batchnorm_statistics_are_buffers(light_dir):
    r = onnxscore.analyze(os.path.join(light_dir, "light_resnet50.onnx"))
    # 53 BatchNorms over 26,560 channels in all, each with a running mean and variance
    assert r.totals.buffers == 2 * 26_560


@pytest.mark.parametrize("name", [e[0] for e in EXPECTED])
def test_peak_activation_is_known(light_dir, name):
    assert onnxscore.analyze(os.path.join(light_dir, name)).totals.peak_activation_bytes > 0


def test_vgg19_peak_activation(light_dir):
    # the peak is a 1x64x224x224 float tensor read while the next one is written (conv1 ReLUs)
    r = onnxscore.analyze(os.path.join(light_dir, "light_vgg19.onnx"))
    assert r.totals.peak_activation_bytes == 2 * 64 * 224 * 224 * 4
