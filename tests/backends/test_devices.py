"""OUTRIDER_DEVICE: the setting's syntax, its resolution against the GPUs torch sees, the placement of each
kind of model, and the refusal at start-up of a GPU that is not there. The resolution is checked with
stand-in GPU counts (this machine has none); the ``cuda``-marked tests run on a GPU machine."""

from __future__ import annotations

import pytest
import torch

from outrider.backends import devices
from outrider.backends.devices import (
    DeviceUnavailable,
    Placement,
    parse_device,
    placement_for,
    resolve_device,
)
from outrider.config import Settings

HAS_GPU = torch.cuda.is_available()
needs_gpu = pytest.mark.skipif(not HAS_GPU, reason="no CUDA GPU on this machine")


@pytest.mark.parametrize("value", ["auto", "cpu", "cuda", "cuda:0", "cuda:3", " CUDA:1 "])
def test_the_setting_accepts_auto_cpu_cuda_and_cuda_n(value):
    assert parse_device(value) == value.strip().lower()
    assert Settings(device=value).device == value.strip().lower()


@pytest.mark.parametrize("value", ["gpu", "cuda:", "cuda:x", "mps", "", "cpu:0"])
def test_the_setting_refuses_anything_else(value):
    with pytest.raises(ValueError, match="auto, cpu, cuda or cuda:N"):
        Settings(device=value)


def test_auto_takes_the_first_gpu_when_there_is_one_and_the_cpu_otherwise():
    assert resolve_device("auto", cuda_count=lambda: 0) == "cpu"
    assert resolve_device("auto", cuda_count=lambda: 2) == "cuda:0"
    assert resolve_device("cpu", cuda_count=lambda: 2) == "cpu"
    assert resolve_device("cuda", cuda_count=lambda: 1) == "cuda:0"
    assert resolve_device("cuda:1", cuda_count=lambda: 2) == "cuda:1"


def test_a_gpu_that_is_not_there_is_refused_with_the_reason():
    with pytest.raises(DeviceUnavailable, match="sees no CUDA GPU"):
        resolve_device("cuda", cuda_count=lambda: 0)
    with pytest.raises(DeviceUnavailable, match=r"has 2 CUDA GPU\(s\) \(0-1\)"):
        resolve_device("cuda:2", cuda_count=lambda: 2)


@pytest.mark.skipif(HAS_GPU, reason="checks the refusal on a machine without a GPU")
def test_services_refuse_to_start_on_a_missing_gpu(tmp_path):
    from outrider.app_state import build_services

    with pytest.raises(DeviceUnavailable, match="OUTRIDER_DEVICE=cuda"):
        build_services(Settings(data_dir=tmp_path, device="cuda", environment="test"))
    assert not (tmp_path / "outrider.db").exists()  # refused before the database was opened


def test_decoders_go_to_the_gpu_in_half_precision_and_encoders_stay_float32():
    assert placement_for("cpu", "decoder") == Placement("cpu", "float32")
    assert placement_for("cpu", "encoder") == Placement("cpu", "float32")
    assert placement_for("cuda:0", "decoder", bf16_supported=lambda: True) == Placement("cuda:0", "bfloat16")
    assert placement_for("cuda:1", "decoder", bf16_supported=lambda: False) == Placement("cuda:1", "float16")
    assert placement_for("cuda:0", "encoder") == Placement("cuda:0", "float32")
    assert placement_for("cuda:0", "embedding").is_cuda
    assert placement_for("cuda:0", "decoder", bf16_supported=lambda: True).torch_dtype() is torch.bfloat16


def test_on_the_cpu_training_steps_run_without_autocast():
    previous = devices.current_device()
    try:
        devices.configure_device("cpu")
        with devices.autocast():
            assert not torch.is_autocast_enabled()
            assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype is torch.float32
    finally:
        devices._Current.device = previous


def test_a_decoder_loads_where_the_process_was_configured(base_models_dir, monkeypatch):
    """The real loader with a stand-in device: the weights' dtype and the ``.to()`` target follow placement."""
    from outrider.backends.decoder_hf import SMOLLM2_ID, HFDecoder, ensure_smollm2_base

    folder = ensure_smollm2_base(base_models_dir / SMOLLM2_ID.replace("/", "--"))
    moved: list[str] = []
    original_to = torch.nn.Module.to

    def record_to(module, *args, **kwargs):
        moved.append(str(args[0] if args else kwargs.get("device")))
        return original_to(module, "cpu")  # there is no GPU here: record where it was sent, keep it on the CPU

    monkeypatch.setattr(devices, "placement", lambda kind: placement_for("cuda:0", kind, bf16_supported=lambda: True))
    monkeypatch.setattr(torch.nn.Module, "to", record_to)
    decoder = HFDecoder.load(str(folder))
    monkeypatch.undo()
    try:
        assert moved[:1] == ["cuda:0"]
        assert next(decoder.model.parameters()).dtype is torch.bfloat16
    finally:
        decoder.close()


@pytest.mark.cuda
@needs_gpu
def test_on_a_gpu_auto_resolves_to_it_and_autocast_runs_in_bfloat16():
    assert resolve_device("auto") == "cuda:0"
    with devices.autocast("cuda:0"):
        product = torch.ones(8, 8, device="cuda:0") @ torch.ones(8, 8, device="cuda:0")
    assert product.dtype in (torch.bfloat16, torch.float16)


@pytest.mark.cuda
@needs_gpu
def test_on_a_gpu_smollm2_in_bfloat16_greedy_decodes_like_float32_on_the_cpu(base_models_dir):
    """Half precision holds for decoders: the first greedy tokens match the CPU's float32 ones."""
    from outrider.backends.decoder_hf import SMOLLM2_ID, HFDecoder, ensure_smollm2_base

    folder = str(ensure_smollm2_base(base_models_dir / SMOLLM2_ID.replace("/", "--")))
    answers = {}
    previous = devices.current_device()
    try:
        for setting in ("cpu", "cuda"):
            devices.configure_device(setting)
            decoder = HFDecoder.load(folder)
            try:
                tokenizer, model = decoder.tokenizer, decoder.model
                assert str(model.device).startswith(setting)
                inputs = tokenizer.apply_chat_template(
                    [{"role": "user", "content": "Name three colors."}],
                    add_generation_prompt=True,
                    return_tensors="pt",
                    return_dict=True,
                ).to(model.device)
                with torch.inference_mode():
                    out = model.generate(**inputs, max_new_tokens=8, do_sample=False)
                answers[setting] = out[0, inputs["input_ids"].shape[1] :].tolist()
            finally:
                decoder.close()
    finally:
        devices._Current.device = previous
    assert answers["cuda"][:4] == answers["cpu"][:4], answers
