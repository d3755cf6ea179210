"""The tutorial notebooks (docs/notebooks/*.ipynb) run top to bottom in a real kernel (nbclient,
ipykernel) with the package installed, with no error and no network, and the numbers they compute
are PyTorch's: after a notebook has run, a cell the test adds prints its results as JSON, which are
compared here with PyTorch computing the same layers."""

from __future__ import annotations

import json
from pathlib import Path

import nbclient
import nbformat
import numpy as np
import pytest
import torch

from tconv.explainer.examples import EXAMPLES

NOTEBOOKS = Path(__file__).resolve().parents[1] / "docs" / "notebooks"


def _torch_transposed(x, w, **params):
    layer = torch.nn.ConvTranspose2d(w.shape[0], w.shape[1] * params.get("groups", 1), w.shape[2:],
                                     bias=False, **params).double()
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(np.asarray(w, np.float64)))
        return layer(torch.from_numpy(np.asarray(x, np.float64))).numpy()


def check_01(values: dict) -> None:
    x, w, y = (np.array(values[k]) for k in ("x", "w", "y"))
    np.testing.assert_allclose(y, _torch_transposed(x, w), atol=1e-12)
    seed = next(ex for ex in EXAMPLES if ex.name == "ko-3ch-k4")  # the note's printed result
    np.testing.assert_allclose(np.round(y, 4), seed.expected, atol=1e-9)
    for params, shape in zip(values["settings"], values["shapes"]):
        assert tuple(shape) == _torch_transposed(x, np.ones((1, 3, 4, 4)), **params).shape, params
    xg, wg, yg = (np.array(values[k]) for k in ("xg", "wg", "yg"))
    np.testing.assert_allclose(yg, _torch_transposed(xg, wg, groups=2), atol=1e-9)


def check_02(values: dict) -> None:
    from tconv.explainer.examples import D2L_MATRIX

    F = torch.nn.functional
    X, K = (torch.tensor(values[k]).reshape(1, 1, 2, 2) for k in ("X", "K"))
    np.testing.assert_array_equal(values["basic"], F.conv_transpose2d(X, K)[0, 0].numpy())
    np.testing.assert_array_equal(values["padded"], F.conv_transpose2d(X, K, padding=1).numpy())
    np.testing.assert_array_equal(values["strided"], F.conv_transpose2d(X, K, stride=2).numpy())
    conv = torch.nn.Conv2d(10, 20, 5, padding=2, stride=3)
    back = torch.nn.ConvTranspose2d(20, 10, 5, padding=2, stride=3)
    x = torch.zeros(1, 10, 16, 16)
    assert tuple(values["conv_shape"]) == conv(x).shape and tuple(values["back_shape"]) == back(conv(x)).shape
    np.testing.assert_array_equal(values["W"], D2L_MATRIX)  # the chapter's kernel2matrix
    X3, K2 = torch.tensor(values["X3"]).reshape(1, 1, 3, 3), torch.tensor(values["K2"]).reshape(1, 1, 2, 2)
    np.testing.assert_allclose(values["Y2"], F.conv2d(X3, K2)[0, 0].numpy())
    np.testing.assert_allclose(values["Z"], F.conv_transpose2d(F.conv2d(X3, K2), K2)[0, 0].numpy())


def check_03(values: dict) -> None:
    F = torch.nn.functional
    seeds = {ex.name: ex.expected for ex in EXAMPLES}
    x, ones2, ones3 = torch.ones(1, 1, 4, 4), torch.ones(1, 1, 2, 2), torch.ones(1, 1, 3, 3)
    for name, want, seed in [
            ("conv_p1", F.conv2d(x, ones3, padding=1), "ko-conv-k3-p1"),
            ("conv_p2", F.conv2d(x, ones3, padding=2), "ko-conv-k3-p2"),
            ("k2_p0", F.conv_transpose2d(x, ones2), "ko-k2-p0"),
            ("k2_p1", F.conv_transpose2d(x, ones2, padding=1), "ko-k2-p1"),
            ("k3_p0", F.conv_transpose2d(x, ones3), "ko-k3-p0"),
            ("k3_p2", F.conv_transpose2d(x, ones3, padding=2), "ko-k3-p2"),
            ("k3_p2_s2", F.conv_transpose2d(x, ones3, stride=2, padding=2), "ko-k3-p2-s2")]:
        np.testing.assert_array_equal(values[name], want.numpy(), err_msg=name)
        np.testing.assert_array_equal(np.squeeze(values[name]), np.squeeze(seeds[seed]), err_msg=seed)
    a, k = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]]), torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])
    for (s, p, op), seed in zip([(2, 1, 0), (3, 1, 0), (2, 0, 0), (2, 1, 1)],
                                ["jp-s2-p1", "jp-s3-p1", "jp-s2-p0", "jp-s2-p1-op1"]):
        want = F.conv_transpose2d(a, k, stride=s, padding=p, output_padding=op)[0, 0].numpy()
        for table in ("hand", "ours"):
            np.testing.assert_array_equal(values[table][f"s{s}_p{p}_op{op}"], want)
        np.testing.assert_array_equal(want, np.squeeze(seeds[seed]))
    np.testing.assert_array_equal(values["image"], [[1, 0, 2, 0], [0, 0, 0, 0], [3, 0, 4, 0], [0, 0, 0, 0]])
    w = torch.ones(1, 1, 3, 3)
    for n, small, back in values["rows"]:
        conv = F.conv2d(torch.ones(1, 1, n, n), w, stride=2, padding=1)
        assert small == conv.shape[2]
        assert back == [F.conv_transpose2d(conv, w, stride=2, padding=1, output_padding=op).shape[2]
                        for op in (0, 1)]
    assert values["formula"] == [7, 8]
    layer = torch.nn.ConvTranspose2d(1, 1, 3, stride=2, padding=1, bias=False)
    assert tuple(values["sized"]) == layer(torch.ones(1, 1, 4, 4), output_size=(8, 8)).shape


def check_04(values: dict) -> None:
    F = torch.nn.functional
    ones = torch.ones
    np.testing.assert_array_equal(values["k3s2"], F.conv_transpose2d(ones(1, 1, 4, 4), ones(1, 1, 3, 3),
                                                                    stride=2, padding=2).numpy())
    np.testing.assert_array_equal(values["k4s2"], F.conv_transpose2d(ones(1, 1, 8, 8), ones(1, 1, 4, 4),
                                                                    stride=2, padding=1).numpy())
    np.testing.assert_array_equal(values["dilated"], F.conv_transpose1d(ones(1, 1, 6), ones(1, 1, 3),
                                                                       stride=2, dilation=2).numpy())
    for name, (counts, even) in values["counts"].items():
        k, s, d = (int(v[1:]) for v in name.split())
        # ones through ones: each output pixel counts the taps that reach it; pixel j = 10*s + r lies
        # in the interior (every input pixel it could come from exists), r its position modulo s
        y = F.conv_transpose1d(ones(1, 1, 40), ones(1, 1, k), stride=s, dilation=d)[0, 0].numpy()
        assert counts == [int(y[10 * s + r]) for r in range(s)], name
        assert even == (len(set(y[10 * s: 30 * s].tolist())) == 1), name
    for key in ("w3", "w4"):
        w = torch.tensor(values[key], dtype=torch.float64)
        flat = F.conv_transpose2d(ones(1, 1, 16, 16, dtype=w.dtype), w, stride=2, padding=1)[0, 0, 4:-4, 4:-4]
        want = [[flat[i::2, j::2].mean().item() for j in range(2)] for i in range(2)]
        np.testing.assert_allclose(values["means_" + key], want, rtol=1e-12)
    assert len(values["options"]) == 10
    for kernel, stride, padding, output_padding, dilation, even in values["options"]:
        layer = torch.nn.ConvTranspose1d(1, 1, kernel, stride, padding, output_padding, dilation=dilation,
                                         bias=False)
        assert layer(ones(1, 1, 16)).shape[2] == 32
        y = F.conv_transpose1d(ones(1, 1, 40), ones(1, 1, kernel), stride=stride, dilation=dilation)[0, 0]
        assert even == (len(set(y[10 * stride: 30 * stride].tolist())) == 1)
    assert [o[-1] for o in values["options"]][:3] == [True] * 3 and sum(o[-1] for o in values["options"]) == 3
    up = ones(1, 1, 8, 8)
    np.testing.assert_array_equal(values["resized"], F.conv2d(up, ones(1, 1, 3, 3), padding=1).numpy())


def check_05(values: dict) -> None:
    from oracle import torch_transposed_mode

    # the Keras layer by PyTorch: data and kernel moved by hand, "same" at stride 2 and kernel 4 is
    # padding 1 on both sides
    x = torch.tensor(values["x"]).permute(0, 3, 1, 2)
    kernel = torch.tensor(values["kernel"]).permute(3, 2, 0, 1)
    want = torch.nn.functional.conv_transpose2d(x, kernel, torch.tensor(values["bias"]), stride=2,
                                                padding=1).permute(0, 2, 3, 1).numpy()
    for name in ("y_keras", "y_torch", "y_onnx", "y_jax", "y_tconv"):
        np.testing.assert_allclose(values[name], want, rtol=1e-4, atol=1e-4, err_msg=name)
    xs, ws = np.array(values["xs"]), np.array(values["ws"])
    for mode, y in values["modes"].items():
        np.testing.assert_allclose(y, torch_transposed_mode(xs, ws, (1, 1), ((1, 1), (1, 1)), (1, 1), 1,
                                                            mode, (6, 6)), rtol=1e-10, atol=1e-10)
    assert values["periodic"] == [1, 2, 12, 12]


#: notebook file -> (the added cell that prints its results as JSON, the check of those results)
CHECKS = {
    "05-porting-and-padding-modes.ipynb": (
        "import json; print(json.dumps(dict(x=x.tolist(), kernel=kernel.tolist(), bias=bias.tolist(), "
        "y_keras=y_keras.tolist(), y_torch=y_torch.tolist(), y_onnx=y_onnx.tolist(), y_jax=y_jax.tolist(), "
        "y_tconv=y_tconv.tolist(), xs=xs.tolist(), ws=ws.tolist(), "
        "modes={m: v.tolist() for m, v in modes.items()}, periodic=periodic.shape)))",
        check_05),
    "04-checkerboard-artifacts.ipynb": (
        "import json, dataclasses; print(json.dumps(dict(k3s2=k3s2.tolist(), k4s2=k4s2.tolist(), "
        "dilated=dilated.tolist(), counts={n: (list(o.counts), o.even) for n, o in counts.items()}, "
        "w3=w3.tolist(), w4=w4.tolist(), means_w3=phase_means(w3).tolist(), "
        "means_w4=phase_means(w4).tolist(), options=[dataclasses.astuple(o) for o in options], "
        "resized=resized.tolist())))",
        check_04),
    "03-zero-insertion-and-output-padding.ipynb": (
        "import json; L = lambda d: {n: v.tolist() for n, v in d.items()}; print(json.dumps(dict("
        "conv_p1=conv_p1.tolist(), conv_p2=conv_p2.tolist(), k2_p0=k2_p0.tolist(), "
        "k2_p1=k2_p1.tolist(), k3_p0=k3_p0.tolist(), k3_p2=k3_p2.tolist(), k3_p2_s2=k3_p2_s2.tolist(), "
        "hand=L(hand), ours=L(ours), image=z.image[0].tolist(), rows=rows, "
        "formula=[transposed_size(4, kernel=3, stride=2, pads=(1, 1), output_padding=op) for op in (0, 1)], "
        "sized=sized.shape)))",
        check_03),
    "02-three-views-d2l.ipynb": (
        "import json; print(json.dumps(dict(X=X.tolist(), K=K.tolist(), basic=basic.tolist(), "
        "padded=padded.tolist(), strided=strided.tolist(), conv_shape=Yc.shape, back_shape=back.shape, "
        "W=W.tolist(), X3=X3.tolist(), K2=K2.tolist(), Y2=Y2.tolist(), Z=Z.tolist())))",
        check_02),
    "01-the-layer-and-its-parameters.ipynb": (
        "import json; print(json.dumps(dict(x=x.tolist(), w=layer.weight.tolist(), y=y.tolist(), "
        "settings=settings, shapes=shapes, xg=xg.tolist(), wg=grouped.weight.tolist(), yg=yg.tolist())))",
        check_01),
}


def test_every_notebook_is_checked():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted(CHECKS)


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_the_notebook_runs_and_computes_pytorch_s_numbers(name, tmp_path):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    assert all(not cell.get("outputs") for cell in nb.cells if cell.cell_type == "code")  # stored clean
    dump, check = CHECKS[name]
    nb.cells.append(nbformat.v4.new_code_cell(dump))
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    for cell in nb.cells:
        errors = [o for o in cell.get("outputs", []) if o.output_type == "error"]
        assert not errors, (cell.source, errors)
    (printed,) = [o for o in nb.cells[-1].outputs if o.output_type == "stream"]
    check(json.loads(printed.text))
