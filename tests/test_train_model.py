"""The network on any window length, its config round trip and its built-in input standardization."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emoview.train.model import EmotionNet, ModelConfig


@pytest.mark.parametrize("attention", [False, True])
@pytest.mark.parametrize("frames,features", [(1, 1486), (15, 1486), (90, 136)])
def test_any_window_length(frames, features, attention):
    torch.manual_seed(0)
    net = EmotionNet(ModelConfig(features=features, classes=7, attention=attention)).eval()
    x = torch.randn(3, frames, features)
    probs = net(x)
    assert probs.shape == (3, 7)
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(3))
    torch.testing.assert_close(torch.softmax(net.logits(x), dim=1), probs)


def test_config_round_trip():
    config = ModelConfig(features=136, classes=5, conv_channels=(32, 64), attention=True)
    again = ModelConfig.from_dict(config.to_dict())
    assert again == config and isinstance(again.conv_channels, tuple)


def test_input_standardization_and_mask():
    torch.manual_seed(0)
    net = EmotionNet(ModelConfig(features=4, classes=2, layer_norm=False, input_dropout=0.0)).eval()
    mean, std = np.array([1.0, 2.0, 3.0, 4.0]), np.array([2.0, 2.0, 2.0, 2.0])
    net.set_input_stats(mean, std, mask=np.array([1, 1, 1, 0]))
    x = torch.tensor([[[1.0, 2.0, 3.0, 4.0]]])
    y = x.clone()
    y[..., 3] = 1e6  # a masked feature has no influence
    torch.testing.assert_close(net(x), net(y))
    standardized = x * net.input_scale + net.input_shift
    torch.testing.assert_close(standardized, torch.zeros_like(x))
    assert "input_scale" in net.state_dict()  # travels with checkpoints and into ONNX


def test_replicate_padding_makes_a_still_window_match_one_frame():
    torch.manual_seed(0)
    net = EmotionNet(ModelConfig(features=20, classes=3, padding="replicate")).eval()
    frame = torch.randn(1, 1, 20)
    one = net.conv(frame.transpose(1, 2))
    held = net.conv(frame.repeat(1, 15, 1).transpose(1, 2))
    torch.testing.assert_close(held, one.expand_as(held))
    zeros = EmotionNet(ModelConfig(features=20, classes=3)).eval()
    zeros.load_state_dict(net.state_dict())
    assert not torch.allclose(zeros.conv(frame.repeat(1, 15, 1).transpose(1, 2))[..., 7], zeros.conv(frame.transpose(1, 2))[..., 0])


def test_batches_never_hand_batchnorm_a_single_window():
    from emoview.train.trainer import batches

    assert [len(b) for b in batches(np.arange(513), 256)] == [256, 256]  # the one left over waits
    assert [len(b) for b in batches(np.arange(514), 256)] == [256, 256, 2]
    assert np.array_equal(np.concatenate(list(batches(np.arange(10), 4))), np.arange(10))
    net = EmotionNet(ModelConfig(features=8, classes=3, conv_channels=(4, 4), lstm_hidden=4)).train()
    with pytest.raises(ValueError):  # why: what the trainer hit with a last batch of one 1-frame window
        net.logits(torch.zeros(1, 1, 8))
    net.logits(torch.zeros(2, 1, 8))
