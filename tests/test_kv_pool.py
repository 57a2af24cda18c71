"""What each engine's memory fraction is a fraction of (genmodel._kvpool.pool_device): vLLM's and
SGLang's of the device's memory, TensorRT-LLM's of the memory the weights leave free; the
simulation and the closed form size the KV pool the same way."""

from __future__ import annotations

import pytest

import genmodel
from genmodel import Plan
from genmodel._enginepresets import engine_preset
from genmodel._engines import KvPool
from genmodel._kvpool import pool_device
from genmodel._memory import engine_max_batch, max_batch
from genmodel._workload import Precision
from genmodel.io import load_hardware, load_model

FP8 = Precision(weight_dtype="fp8", act_dtype="fp8", kv_dtype="fp8")


def test_only_tensorrt_llm_takes_its_fraction_of_the_free_memory() -> None:
    assert engine_preset("trtllm").kv_fraction_of == "free"
    assert "free_gpu_memory_fraction" in engine_preset("trtllm").source
    assert engine_preset("vllm").kv_fraction_of == engine_preset("sglang").kv_fraction_of == "device"
    with pytest.raises(genmodel.SpecError, match="kv_fraction_of"):
        engine_preset("vllm").replace(kv_fraction_of="weights")


@pytest.mark.parametrize("weights_gb", [0.0, 35.0, 70.0])
def test_a_free_fraction_leaves_the_complement_of_the_weights_to_the_pool(weights_gb: float) -> None:
    device = genmodel.load_device("h100-sxm")
    f = device.efficiency.usable_memory_frac
    assert pool_device(device, weights_gb * 1e9, "device") is device
    free = pool_device(device, weights_gb * 1e9, "free")
    # f of what the weights leave, plus the weights
    total = device.memory_capacity_bytes - device.os_reserve_bytes
    assert free.usable_memory_bytes == pytest.approx(f * (total - weights_gb * 1e9) + weights_gb * 1e9)
    assert free.usable_memory_bytes - device.usable_memory_bytes == pytest.approx((1 - f) * weights_gb * 1e9)


def test_a_model_that_nearly_fills_the_device_gets_a_much_larger_pool() -> None:
    # DeepSeek-R1 fp8 on 4 B200: the weights take most of each GPU, so 90 % of the device leaves a
    # sliver for the KV cache, and 90 % of what is free several times more
    model, hw, plan = load_model("deepseek-r1"), load_hardware("b200"), Plan(tp=4)
    lengths = {"input_tokens": 8192, "output_tokens": 1024}
    device = hw.device
    _, device_most, _ = engine_max_batch(model, device, plan, FP8, **lengths)
    _, free_most, held = engine_max_batch(
        model, device, plan, FP8, **lengths, pool=KvPool(fraction_of="free")
    )
    assert held == 1024  # a reservation of the whole output
    assert device_most == max_batch(model, device, plan, FP8, **lengths)
    assert free_most > 3 * device_most


def test_the_simulation_and_the_closed_form_size_tensorrt_llms_pool_alike() -> None:
    from genmodel._servingmodel import serving_model

    model, hw, plan = load_model("deepseek-r1"), load_hardware("b200"), Plan(tp=4)
    kw = {"concurrency": 16, "input_tokens": 8192, "output_tokens": 1024}
    preset = engine_preset("trtllm", hw.device)
    sim = serving_model("simulated", engine=preset).estimate(model, hw, plan, FP8, **kw)
    closed = serving_model("closed-form", engine=preset).estimate(model, hw, plan, FP8, **kw)
    assert sim.serving is not None and closed.serving is not None
    # the pool of 90 % of the device held 15 of the 16 clients (the closed form waited 1.5 s for a
    # slot, the simulation 2.9 s); 90 % of the free memory holds them all
    assert closed.serving.max_running >= 16
    assert not closed.serving.kv_limited
    assert sim.ttft_s == pytest.approx(closed.ttft_s, rel=0.5)


def test_the_closed_form_open_loop_sizes_the_pool_as_its_engine_does() -> None:
    """A request rate has no benchmark client's wave; the open loop takes the engine's pool itself:
    at a rate the whole-sequence pool of the device's fraction cannot keep up with (15 sequences),
    TensorRT-LLM's pool of the free memory (67) runs."""
    from genmodel._openloop import estimate_open_loop

    model, hw, plan = load_model("deepseek-r1"), load_hardware("b200"), Plan(tp=4)
    kw = {"request_rate": 1.0, "input_tokens": 8192, "output_tokens": 1024}
    with pytest.raises(genmodel.InfeasibleError, match="without bound"):
        estimate_open_loop(model, hw, plan, FP8, **kw)
    trt = estimate_open_loop(model, hw, plan, FP8, **kw, pool=engine_preset("trtllm", hw.device).kv_pool)
    assert trt.decode_batch > 15


def test_each_engines_pool_is_its_fraction_of_its_memory_less_weights_and_activations() -> None:
    # Llama-3.1-70B fp8 on one B200: vLLM f x M - W - A (gpu_memory_utilization of the device);
    # TensorRT-LLM f x (M - W) - A (free_gpu_memory_fraction of what the weights leave), and the
    # configuration AIConfigurator writes for it 0.80 x (M - W) - A (extra_engine_args.*.yaml.j2)
    from genmodel._harness import harness_engine
    from genmodel._memory import memory_use
    from genmodel._simulate import _kv_pool
    from genmodel._sizes import activation_bytes_per_device

    model, device, plan = load_model("llama-3.1-70b"), load_hardware("b200").device, Plan(tp=1)
    prec = Precision(weight_dtype="fp8", act_dtype="fp8", kv_dtype="bf16")
    one = memory_use(model, device, plan, prec, batch=1, input_tokens=1024, output_tokens=1)
    total = device.memory_capacity_bytes - device.os_reserve_bytes
    weights, f = one.weights_bytes_per_device, device.efficiency.usable_memory_frac
    for name, aic, expected in (
        ("vllm", False, f * total - weights),
        ("trtllm", False, f * (total - weights)),
        ("trtllm", True, 0.80 * (total - weights)),
    ):
        engine = engine_preset(name, device)
        if aic:
            engine = harness_engine(engine, "aiconfigurator", concurrency=64, input_tokens=1024)
        act = activation_bytes_per_device(
            model, prec, plan, seqs_per_replica=engine.max_num_seqs, prefill_tokens=engine.max_batched_tokens
        )
        tokens, token_bytes = _kv_pool(model, device, plan, prec, engine, extras_input=1024)
        assert tokens == pytest.approx((expected - act) / token_bytes, abs=1)
    assert engine_preset("trtllm").memory_fraction is None


def test_a_reserve_pool_that_makes_a_request_wait_is_kv_limited() -> None:
    """GUARANTEED_NO_EVICT never preempts, and a pool of whole 32k-token sequences can stop 12 %
    short of full with the next one waiting: the simulated estimate is KV-limited all the same.
    Mixtral-8x7B fp8 on one H100, TensorRT-LLM, 16,384/16,384 tokens: the simulation's pool (less
    a full step's activations) reserves 7 of the 8 clients' sequences, the eighth waits ~1 min."""
    kwargs = {"weight_dtype": "fp8", "kv_dtype": "bf16", "input_tokens": 16384, "output_tokens": 16384}
    e = genmodel.estimate("mixtral-8x7b", "h100-sxm", engine="trtllm", concurrency=8, **kwargs)
    assert e.serving is not None and e.serving.serving_model == "simulated"
    assert e.serving.queue_wait_s > 10 and e.serving.decode_batch < 7.5
    assert e.serving.kv_limited
    roomy = genmodel.estimate("mixtral-8x7b", "h100-sxm", engine="trtllm", concurrency=4, **kwargs)
    assert roomy.serving is not None and not roomy.serving.kv_limited
