"""Which CPUs run the encoder in bf16 (``precision="auto"``, the document pipeline's encoder): only where bf16 is
faster than fp32 there. An Intel CPU with AVX512-BF16 and no AMX ran the encoder at 0.6x its fp32 rate in bf16
(measured, see ``tasks.ml.minilm.cpu_bf16_fast``); the old rule chose bf16 on any ``avx512_bf16`` flag."""

from __future__ import annotations

import pytest

from tasks.ml.minilm import cpu_bf16_fast

_BASE = "fpu vme de pse tsc msr pae mce cx8 apic sep avx avx2 avx512f avx512bw avx512vl avx512_vnni"


def _cpuinfo(vendor: str, extra: str, cpus: int = 2) -> str:
    one = f"processor\t: {{i}}\nvendor_id\t: {vendor}\ncpu family\t: 6\nmodel\t\t: 207\nflags\t\t: {_BASE} {extra}\n\n"
    return "".join(one.format(i=i) for i in range(cpus))


@pytest.mark.parametrize(
    ("vendor", "extra", "fast"),
    [
        ("GenuineIntel", "avx512_bf16", False),  # AMX absent or hidden by the hypervisor: bf16 slower (measured)
        ("GenuineIntel", "avx512_bf16 amx_bf16 amx_tile amx_int8", True),
        ("AuthenticAMD", "avx512_bf16", True),  # Zen 4 and later
        ("AuthenticAMD", "", False),  # Zen 3: no bf16 instructions
        ("GenuineIntel", "", False),
    ],
)
def test_bf16_only_where_it_is_faster(vendor: str, extra: str, fast: bool) -> None:
    assert cpu_bf16_fast(_cpuinfo(vendor, extra)) is fast


def test_a_flag_named_inside_another_word_does_not_count() -> None:
    # whole flag names only: "avx512_bf16x" or a model name mentioning amx is not the flag
    text = _cpuinfo("GenuineIntel", "avx512_bf16x").replace("model\t\t: 207", "model name\t: amx_bf16 test")
    assert cpu_bf16_fast(text) is False


def test_unreadable_or_empty_cpuinfo_means_fp32() -> None:
    assert cpu_bf16_fast("") is False


def test_a_gpu_that_only_emulates_bf16_runs_fp32(monkeypatch: pytest.MonkeyPatch) -> None:
    # No GPU here: torch's answer is replaced by a V100's (bf16 only as emulation, which torch counts by default)
    import torch

    from tasks.ml.minilm import cuda_bf16_supported
    from tasks.training.config import TrainConfig
    from tasks.training.loop import use_bf16

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    assert cuda_bf16_supported() is False
    assert use_bf16(TrainConfig(precision="auto"), torch.device("cuda")) is False
    assert use_bf16(TrainConfig(precision="bf16"), torch.device("cuda")) is True  # asked for explicitly: honoured
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)  # an A100, H100
    assert use_bf16(TrainConfig(precision="auto"), torch.device("cuda")) is True


def test_the_encoder_runs_fp32_on_a_gpu_that_computes_bf16_natively(monkeypatch: pytest.MonkeyPatch) -> None:
    """On an H200 the router's bf16 autocast was 20-30% slower than fp32 at the workflow's batch (results/
    router_h200.json): the encoder's auto precision is fp32 on every GPU, while training keeps bf16 there."""
    import torch

    from tasks.ml.minilm import bf16_supported
    from tasks.training.config import TrainConfig
    from tasks.training.loop import use_bf16

    # No GPU here: torch's answers are replaced by an H100's
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert bf16_supported() is False
    assert use_bf16(TrainConfig(precision="auto"), torch.device("cuda")) is True


def test_the_pipeline_precision_option_is_checked_naming_the_field() -> None:
    from tasks.documents.schemas import ProcessingOptions

    assert ProcessingOptions().precision == "auto"
    with pytest.raises(ValueError, match=r"ProcessingOptions\.precision='fp16' is invalid: use auto, bf16 or fp32"):
        ProcessingOptions(precision="fp16")
