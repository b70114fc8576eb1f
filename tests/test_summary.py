"""Reading a model against the paper: parameter counts and the shapes its modules return."""

import pytest
import torch
from torch import nn

from mrife.models.summary import parameter_count, parameter_table, trace_shapes


def test_parameter_count_leaves_out_frozen_parameters_when_asked():
    layer = nn.Linear(3, 2)  # 6 weights + 2 biases
    layer.bias.requires_grad_(False)
    assert (parameter_count(layer), parameter_count(layer, trainable_only=True)) == (8, 6)
    table = parameter_table({"layer": layer, "two": nn.Sequential(layer, nn.Linear(2, 1))})
    assert table.to_dict("index") == {"layer": {"parameters": 8, "trained by SGD": 6},
                                      "two": {"parameters": 11, "trained by SGD": 9}}


def test_trace_shapes_records_each_watched_module_in_call_order():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 1),
                          nn.Upsample(scale_factor=4))
    x = torch.zeros(1, 3, 16, 16)
    table, out = trace_shapes(model, {"3": "upsampling", "0": "stem"}, x)
    assert out.shape == (1, 2, 32, 32), "the forward's output is returned"
    assert table["module"].tolist() == ["0", "3"], "rows follow the calls, not the dict"
    assert table["output"].tolist() == ["(1, 4, 8, 8)", "(1, 2, 32, 32)"]
    assert table["stride"].tolist() == [2, ""], "stride is the image's width over the output's; '' when wider"
    assert table["paper"].tolist() == ["stem", "upsampling"]
    assert not model[0]._forward_hooks, "the hooks must be removed"
    with pytest.raises(KeyError, match="no module"):
        trace_shapes(model, {"decoder": "?"}, x)
