"""Host (CPU) time of a forward step that runs outside CUDA graphs: the kernels it launches.

Modelling assumptions:
- The serving engines replay decode-only steps from CUDA graphs, but run a step that carries
  prefill tokens eagerly: TensorRT-LLM's PyTorch backend takes a graph only for a batch that
  ``is_generation_only`` (tensorrt_llm/_torch/pyexecutor/model_engine.py
  ``_maybe_get_cuda_graph``; its piecewise graphs for context steps are off by default,
  TorchCompileConfig ``enable_piecewise_cuda_graph`` False), and SGLang up to 0.5.9 captures
  decode batches only (python/sglang/srt/server_args.py ``enable_piecewise_cuda_graph`` False;
  0.5.10 captures prefill piecewise by default, sglang PR 16331). Such a
  step pays the host time of launching every kernel from Python: interpreter, PyTorch dispatch and
  the CUDA launch, for each of them.
- That host time is the kernels one forward launches times a host time per launch. The kernels are
  counted from the model's structure (:func:`eager_launches`): per block, the normalisations, the
  attention block's projections, position embedding, cache write and attention, the feed-forward's
  GEMMs and activation, and for a mixture of experts the router, top-k selection, token
  alignment, two grouped GEMMs, activation and combine, the shared experts; one quantisation kernel
  per GEMM input when activations are 8-bit or narrower; two all-reduces per block under tensor or
  expert parallelism. Fused variants (norm with residual, QKV as one GEMM) count once.
- The host issues kernels while the GPU runs the ones already issued, so a step with prefill takes
  the longer of its GPU time and this host time: a step of few tokens is host-bound and its time
  stays flat as its tokens grow, a long prefill hides the launches (SGLang PR 12160: an eager
  DeepSeek-V3 prefill of one token or a few dozen takes the same ~80 ms; TensorRT-LLM's piecewise
  CUDA graph guide: context iterations are host-bound, "larger token counts reduce exposure to
  host-side overhead"). The step's fixed ``step_overhead_s`` (scheduling, sampling) stays on top.
- An engine's own count replaces the generic one where the engine's model code for that
  architecture was read (:data:`genmodel._eagerkernels.EAGER_BLOCK_KERNELS`: TensorRT-LLM's Llama,
  DeepSeek-V3 and Qwen3-MoE under tensor parallelism, which fold the residual add and RMSNorm, and
  for Llama the quantisation, into their all-reduces, with per-block counts for DeepSeek's dense
  and MoE blocks; SGLang's DeepSeek-V3 (its MHA prefill path, the shared expert inside the fused
  MoE, FlashInfer's all-reduce fusion), Qwen3-MoE and Llama); every other architecture, layout
  and engine keeps the generic count. The host time per launch is derived with the engines' own
  counts of its two measurements (:data:`genmodel._eagerkernels.HOST_BOUND_PREFILLS`).
- Not modelled: vLLM V1's piecewise CUDA graphs (attention launched between graph pieces), host
  work that grows with the batch's sequences (attention metadata), the fusions of engine and
  architecture pairs without a count of their own.
"""

from __future__ import annotations

from genmodel._attention import MultiHeadLatentAttention
from genmodel._eagerkernels import EagerBlockKernels
from genmodel._model import ModelSpec
from genmodel._parallel import Plan
from genmodel._units import DTYPE_BYTES
from genmodel._workload import Precision

#: per block: the fused residual-add + RMSNorm before attention and before the feed-forward
NORM_KERNELS = 2
#: attention block with multi-/grouped-query attention: QKV GEMM, rotary embedding, KV-cache
#: write, attention, output projection (2 of them GEMMs)
GQA_KERNELS, GQA_GEMMS = 5, 2
#: attention block with multi-head latent attention run unabsorbed (prefill): the fused
#: q_a/kv_a down-projection GEMM, q_a and kv_a RMSNorms, q_b and kv_b up-projection GEMMs, rotary
#: embedding, assembly of the keys, latent-cache write, attention, output projection (4 GEMMs)
MLA_KERNELS, MLA_GEMMS = 10, 4
#: dense gated MLP: gate-up GEMM, activation-and-multiply, down GEMM
DENSE_MLP_KERNELS, DENSE_MLP_GEMMS = 3, 2
#: routed experts: router GEMM, top-k selection, token alignment (sort by expert), two grouped
#: GEMMs, activation, weighted combine; the grouped GEMMs' inputs are quantised like a GEMM's
MOE_KERNELS, MOE_GEMMS = 7, 2
#: shared experts: gate-up GEMM, activation, down GEMM, and their add to the routed output
SHARED_KERNELS, SHARED_GEMMS = 4, 2
#: all-reduces per block under tensor (or expert) parallelism: after attention, after the MLP
ALLREDUCE_KERNELS = 2
#: outside the blocks: embedding, final norm, LM head, sampling
HEAD_KERNELS = 4


def eager_launches(
    model: ModelSpec, plan: Plan, precision: Precision, blocks: tuple[EagerBlockKernels, ...] = ()
) -> int:
    """Kernels one eager forward of ``model`` launches on a device (module docstring's counts).

    Args:
        model: the architecture (its blocks' attention kind, dense and MoE feed-forwards).
        plan: the parallel plan (tp or ep above 1 adds the all-reduces of each block).
        precision: an activation precision of 8 bits or fewer adds one quantisation per GEMM.
        blocks: the engine's own block counts (``genmodel._engines.eager_block_kernels``); the first
            that applies to ``model`` and ``plan`` replaces the generic count of every block (its
            dense-block count for an MoE model's dense blocks).

    Returns:
        The number of kernel launches, at least one per block.
    """
    quant = 1 if DTYPE_BYTES[precision.act_dtype] <= 1 else 0
    for own in blocks:
        if own.applies(model.architecture, model.hidden_size, plan.tp, plan.ep):
            moe = model.num_moe_layers * own.per_block(dense=False, quantised=bool(quant))
            dense = model.num_dense_layers * own.per_block(dense=True, quantised=bool(quant))
            return moe + dense + HEAD_KERNELS
    mla = isinstance(model.attention, MultiHeadLatentAttention)
    attn_kernels, attn_gemms = (MLA_KERNELS, MLA_GEMMS) if mla else (GQA_KERNELS, GQA_GEMMS)
    block = NORM_KERNELS + attn_kernels + quant * attn_gemms
    if plan.tp > 1 or plan.ep > 1:
        block += ALLREDUCE_KERNELS
    dense = DENSE_MLP_KERNELS + quant * DENSE_MLP_GEMMS
    moe = MOE_KERNELS + quant * MOE_GEMMS
    if model.moe is not None and model.moe.shared_intermediate_size:
        moe += SHARED_KERNELS + quant * SHARED_GEMMS
    return (
        model.num_layers * block + model.num_dense_layers * dense + model.num_moe_layers * moe + HEAD_KERNELS
    )


def eager_host_s(
    model: ModelSpec,
    plan: Plan,
    precision: Precision,
    *,
    launch_s: float,
    blocks: tuple[EagerBlockKernels, ...] = (),
) -> float:
    """Host time of one eager forward: :func:`eager_launches` (with the engine's own ``blocks``)
    times ``launch_s`` (seconds per kernel launch); 0 when ``launch_s`` is 0 (an engine whose
    prefill steps run in graphs)."""
    if not launch_s:
        return 0.0
    return eager_launches(model, plan, precision, blocks) * launch_s
