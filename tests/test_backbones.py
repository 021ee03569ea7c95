"""Backbones: the offline EfficientNet-Lite port is right, the registry and the paper cut points."""

from __future__ import annotations

import pickle
import struct
import sys
import types

import numpy as np
import pytest

from build_models.backbones import BACKBONES, get_backbone
from build_models.backbones.torch_legacy import MAGIC_NUMBER, PROTOCOL_VERSION, TorchFileError, load_state_dict


def _write_legacy(path, tensors: dict[str, np.ndarray], views: dict | None = None) -> None:
    """Write a legacy torch.save file by hand, as torch does (pickle stream + raw storages).

    Stand-in ``torch`` modules exist only while pickling, so globals are written by reference. ``views``: a
    tensor's (offset, size, stride) as written in its record, whatever its storage holds (a crafted file).
    """
    torch, utils = types.ModuleType("torch"), types.ModuleType("torch._utils")

    class FloatStorage:
        pass

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called while writing")

    FloatStorage.__module__, FloatStorage.__qualname__ = "torch", "FloatStorage"
    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    torch.FloatStorage, utils._rebuild_tensor_v2 = FloatStorage, _rebuild_tensor_v2

    class StorageRef:
        def __init__(self, key, size):
            self.key, self.size = key, size

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, StorageRef):
                return ("storage", FloatStorage, obj.key, "cpu", obj.size, None)
            return None

    class Tensor:
        def __init__(self, key, array, name):
            self.key, self.array, self.name = key, array, name

        def __reduce__(self):
            strides = tuple(s // 4 for s in self.array.strides)
            storage = StorageRef(self.key, self.array.size)
            offset, shape, strides = (views or {}).get(self.name, (0, self.array.shape, strides))
            return (_rebuild_tensor_v2, (storage, offset, shape, strides, False, {}))

    keys = [str(i) for i in range(len(tensors))]
    saved = {k: sys.modules.get(k) for k in ("torch", "torch._utils")}
    sys.modules.update({"torch": torch, "torch._utils": utils})
    try:
        with open(path, "wb") as f:
            for header in (MAGIC_NUMBER, PROTOCOL_VERSION, {"little_endian": True}):
                pickle.dump(header, f, protocol=2)
            Pickler(f, protocol=2).dump({n: Tensor(k, a, n) for k, (n, a) in zip(keys, tensors.items())})
            pickle.dump(keys, f, protocol=2)
            for array in tensors.values():
                f.write(struct.pack("<q", array.size) + np.ascontiguousarray(array, np.float32).tobytes())
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def test_legacy_reader_round_trip(tmp_path):
    tensors = {"a.weight": np.arange(24, dtype=np.float32).reshape(2, 3, 4), "b.bias": np.ones(5, np.float32)}
    _write_legacy(tmp_path / "w.pth", tensors)
    loaded = load_state_dict(tmp_path / "w.pth")
    assert set(loaded) == set(tensors)
    for name, array in tensors.items():
        np.testing.assert_array_equal(loaded[name], array)


def test_legacy_reader_refuses_other_files(tmp_path):
    (tmp_path / "zip.pth").write_bytes(b"PK\x03\x04" + b"\0" * 100)
    with pytest.raises(TorchFileError):
        load_state_dict(tmp_path / "zip.pth")


def test_lite0_imagenet_port_recognizes_photos():
    """A wrong port (padding, layout, BN epsilon, normalization) cannot pass this."""
    from PIL import Image
    from skimage import data

    from build_models.backbones.efficientnet_lite import build_lite

    model = build_lite("lite0", include_top=True)
    batch = []
    for name in ("coffee", "chelsea"):
        image = Image.fromarray(getattr(data, name)())
        w, h = image.size
        s = min(w, h)
        box = ((w - s) / 2, (h - s) / 2, (w + s) / 2, (h + s) / 2)
        batch.append(np.asarray(image.resize((224, 224), Image.Resampling.BILINEAR, box=box), np.float32))
    probs = model.predict(np.stack(batch), verbose=0)
    assert probs[0].argmax() == 967 and probs[0, 967] > 0.9  # espresso
    assert probs[1].argmax() in (281, 282, 285)  # tabby, tiger cat, Egyptian cat


@pytest.mark.parametrize("variant, params", [("lite1", 5_470_344), ("lite2", 6_150_168)])
def test_lite1_lite2_load_their_weights(variant, params):
    from build_models.backbones.efficientnet_lite import build_lite

    model = build_lite(variant, include_top=True)  # raises if any weight is missing or mis-shaped
    assert model.count_params() == params


def test_registry_lists_valid_names():
    with pytest.raises(ValueError, match="valid: lite0, lite1, lite2, vgg16, resnet50, inceptionv3"):
        get_backbone("mobilenet")


@pytest.mark.parametrize("name, size, cut_shape, unfrozen_convs", [
    ("vgg16", 64, (4, 4, 512), 2),          # block5_conv1, block5_conv2 after block4_pool
    ("resnet50", 64, (4, 4, 1024), 3),      # conv4_block6: 3 convolutions
    ("inceptionv3", 139, (3, 3, 1280), 6),  # mixed8: 2 + 4 convolutions after mixed7
])
def test_paper_cut_points(name, size, cut_shape, unfrozen_convs):
    import keras

    from build_models.heads import split_backbone

    spec = BACKBONES[name]
    features = spec.build(size, None)
    assert features.output_shape[1:] == cut_shape
    assert features.layers[-1].name == spec.gradcam or features.output.name.startswith(spec.gradcam)
    _, top = split_backbone(features, spec.split)
    convs = [layer for layer in top.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == unfrozen_convs
    assert all(not layer.trainable for layer in top.layers if isinstance(layer, keras.layers.BatchNormalization))


class _RunsCode:
    """Unpickling this calls ``os.system``: what a crafted weights file would do."""

    def __reduce__(self):
        import os

        return os.system, ("touch pwned",)


def test_legacy_reader_never_runs_code_from_a_crafted_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for position in range(5):  # the magic, the protocol, the system info, the state dict, the key list in turn
        records = [0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}, {}, []]
        records[position] = _RunsCode() if position != 3 else {"conv.weight": _RunsCode()}
        path = tmp_path / f"crafted{position}.pth"
        with open(path, "wb") as f:
            for record in records:
                pickle.dump(record, f, protocol=2)
        with pytest.raises(TorchFileError, match="refusing to load"):
            load_state_dict(path)
        assert not (tmp_path / "pwned").exists(), position


@pytest.mark.parametrize("offset, size, stride, count", [
    (0, (4, 4), (4, 1), 15),  # one element past the storage
    (10, (2, 3), (3, 1), 12),  # an offset that pushes the view out
    (0, (3,), (-1,), 3),  # a negative stride walks backwards out of the buffer
    (-2, (2,), (1,), 4),  # a negative offset
    (0, (2, 2), (1000000, 1), 4),  # a huge stride
])
def test_legacy_reader_refuses_tensors_that_reach_past_their_storage(tmp_path, offset, size, stride, count):
    """A crafted file whose tensor record (offset, size, stride) points outside the bytes that follow: one
    clear error, never a read past the buffer."""
    _write_legacy(tmp_path / "w.pth", {"w": np.zeros(count, np.float32)}, views={"w": (offset, size, stride)})
    with pytest.raises(TorchFileError, match="reaches past|bad offset"):
        load_state_dict(tmp_path / "w.pth")
