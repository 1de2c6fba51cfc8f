"""The recipes of the networks still to be trained for chapters 08 and 10: what they build and what
`pretrained.train` hands to the training loop."""

import json

import pytest
import torch

from elslib import data, networks, pretrained, training


def test_attention_and_conditional_recipes_build_the_networks_they_name():
    attention = networks.build(
        pretrained.RECIPES["unet-attention"]["kind"], **pretrained.RECIPES["unet-attention"]["config"]
    )
    assert isinstance(attention, networks.UNet)
    assert any(isinstance(m, networks.SelfAttention) for m in attention.modules())
    assert not any(isinstance(m, networks.SelfAttention) for m in pretrained.load("unet-zeros").modules())
    for name, kind in (("resnet-conditional", networks.ResNet), ("unet-conditional", networks.UNet)):
        recipe = pretrained.RECIPES[name]
        net = networks.build(recipe["kind"], **recipe["config"])
        assert isinstance(net, kind) and net.num_classes == 10
        assert 0 < recipe["label_dropout"] < 1  # one network for labelled and unlabelled sampling
        x = torch.zeros(2, 1, 32, 32)
        with torch.no_grad():  # the "no label" row is used for -1, the class rows otherwise
            assert not torch.equal(net(x, 0.5, label=torch.tensor([3, 3])), net(x, 0.5, label=torch.tensor([-1, -1])))


@pytest.mark.parametrize("name, conditional", [("resnet-conditional", True), ("resnet-zeros", False)])
def test_train_passes_labels_and_dropout_only_to_conditional_networks(tmp_path, monkeypatch, name, conditional):
    seen = {}

    def fake_train(net, images, **kwargs):
        seen.update(kwargs, images=images, num_classes=net.num_classes)
        return training.History(losses=[1.0] * kwargs["steps"], seconds=0.0)

    monkeypatch.setattr(training, "train", fake_train)
    path = pretrained.train(name, steps=600, out_dir=tmp_path, progress=False)
    images, labels = data.load("mnist")
    assert torch.equal(seen["images"], images)
    if conditional:
        assert torch.equal(seen["labels"], labels) and seen["num_classes"] == 10
        assert seen["label_dropout"] == pretrained.LABEL_DROPOUT
        assert json.loads(path.with_suffix(".json").read_text())["label_dropout"] == pretrained.LABEL_DROPOUT
    else:
        assert seen["labels"] is None and seen["num_classes"] is None
