"""mtkseg.npu_export and ``mtkseg export --npu``: where the MediaTek SDK cannot be installed (here),
a typed error that names ai-edge-litert-sdk-mediatek; targets validated against ai_edge_litert.aot."""

from __future__ import annotations

import pytest
from fixtures.reference import model_path

from mtkseg import npu_export
from mtkseg.cli import main
from mtkseg.errors import ExportError, InvalidArgumentError

pytest.importorskip("ai_edge_litert.aot.vendors.mediatek.target")


def _have_sdk() -> bool:
    try:
        import ai_edge_litert_sdk_mediatek  # noqa: F401
    except ImportError:
        return False
    return True


def test_targets_come_from_ai_edge_litert_aot():
    socs = npu_export.mediatek_socs()
    assert "MT6991" in socs and "ALL" not in socs
    assert npu_export.parse_npu_target("MediaTek:mt6991") == ("mediatek", "MT6991")
    for bad, match in [("mediatek:MT0000", "unknown MediaTek SoC"), ("qualcomm:SM8650", "VENDOR:SOC"),
                       ("mediatek", "VENDOR:SOC"), ("mediatek:", "VENDOR:SOC")]:
        with pytest.raises(InvalidArgumentError, match=match):
            npu_export.parse_npu_target(bad)


@pytest.mark.skipif(_have_sdk(), reason="the MediaTek SDK is installed here")
def test_missing_sdk_is_a_typed_error_naming_the_package(tmp_path, capsys):
    with pytest.raises(ExportError, match="pip install ai-edge-litert-sdk-mediatek") as exc:
        npu_export.compile_for_npu(model_path("int8_io"), "mediatek:MT6991", tmp_path / "out.tflite")
    assert "NeuroPilot" in str(exc.value) and "downloads" in str(exc.value)
    assert not (tmp_path / "out.tflite").exists()
    rc = main(["export", model_path("int8_io"), "-o", str(tmp_path / "m.tflite"), "--npu", "mediatek:MT6991"])
    err = capsys.readouterr().err
    assert rc == 1 and "ai-edge-litert-sdk-mediatek" in err and not (tmp_path / "m.tflite").exists()
    rc = main(["export", model_path("int8_io"), "-o", str(tmp_path / "m.tflite"), "--npu", "mediatek:MT1"])
    assert rc == 1 and "unknown MediaTek SoC" in capsys.readouterr().err
