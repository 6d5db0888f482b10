"""ONNX export: the exported graph, run by ONNX Runtime, reproduces the torch model at other sizes too."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import torch
from typer.testing import CliRunner

from enhancekit import create_model
from enhancekit.cli.app import app
from enhancekit.inference.export import export_onnx


def test_export_cli_matches_torch_at_a_new_size(tmp_path):
    torch.manual_seed(0)
    model = create_model("dncnn", depth=4, width=8, pretrained=False)
    weights = tmp_path / "w.safetensors"
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    # The card written next to trained weights tells the CLI the architecture.
    (tmp_path / "w.json").write_text('{"model": "dncnn", "args": {"depth": 4, "width": 8}}')
    onnx_path = tmp_path / "dncnn.onnx"
    result = CliRunner().invoke(
        app,
        ["export", "--model", "dncnn", "--weights", str(weights), "--format", "onnx", "-o", str(onnx_path)],
    )
    assert result.exit_code == 0, result.output
    # Independent of the exporter's own check: a size never seen while exporting, batch of two.
    probe = torch.rand(2, 1, 45, 71)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: probe.numpy()})[0]
    reference = create_model("dncnn", weights=weights)
    assert reference.body[0].out_channels == 8
    with torch.inference_mode():
        expected = reference(probe).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_export_rejects_unknown_format(tmp_path):
    result = CliRunner().invoke(
        app, ["export", "--model", "dncnn", "--format", "tflite", "-o", str(tmp_path / "x")]
    )
    assert result.exit_code == 1
    assert "unknown export format" in result.output


def test_srcnn_exports_with_dynamic_sizes(tmp_path):
    # SRCNN's bicubic step is written with convolutions while exporting, so one graph serves every size.
    onnx_path = tmp_path / "srcnn.onnx"
    result = CliRunner().invoke(app, ["export", "--model", "srcnn-x3", "-o", str(onnx_path)])
    assert result.exit_code == 0, result.output
    probe = torch.rand(1, 3, 29, 41)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: probe.numpy()})[0]
    with torch.inference_mode():
        expected = create_model("srcnn-x3")(probe).numpy()
    assert got.shape == (1, 3, 87, 123)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_3d_model_exports_with_dynamic_depth_height_and_width(tmp_path):
    torch.manual_seed(0)
    model = create_model("adl-3d", pretrained=False, filters=[4, 4, 4, 4])
    onnx_path = tmp_path / "adl3d.onnx"
    export_onnx(model, onnx_path, size=16)
    probe = torch.rand(1, 1, 8, 24, 16)  # a shape the exporter never saw
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: probe.numpy()})[0]
    with torch.inference_mode():
        expected = model(probe).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)
