"""Engines' own counts of the kernels one decoder block launches in an eager forward (a step with
prefill tokens), read from each engine's model code, by architecture.

Modelling assumptions:
- A kernel is one launch the Python model code dispatches (the convention of
  :func:`genmodel._hostcost.eager_launches`' generic count); an engine's count replaces the generic
  one only for the architecture, hidden sizes and parallelism its source names.
- An architecture without a count here, and every engine not named, takes the generic count.
- The host time per launch (``genmodel._enginepresets.PREFILL_LAUNCH_S``) is derived from two
  host-bound eager prefills divided by the kernels their engines launched, counted by the same
  convention (:data:`HOST_BOUND_PREFILLS`): a count and that constant change together.
- A decode step runs eagerly too where the engine has no CUDA graph for its batch size: the
  defaults of which sizes each engine graphs are at the end, with their sources.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class EagerBlockKernels:
    """An engine's own count of the kernels one decoder block of one architecture launches in an
    eager forward (a step with prefill tokens), read from the engine's model code; it replaces the
    generic count of :func:`genmodel._hostcost.eager_launches` where it applies. A kernel is one
    launch the Python model code dispatches, the convention of the generic count: an operator
    implemented in C++ counts once whatever it launches inside (the attention op, ``fused_moe``,
    a fused all-reduce), a Python op that launches two (a quantisation, then a GEMM) twice.

    Attributes:
        architecture: the HuggingFace ``architectures`` entry the engine's model class serves.
        kernels: the block's kernels at 16-bit activations (an MoE architecture's MoE blocks).
        quantised_inputs: kernels added when activations are 8 bits or narrower (GEMM inputs the
            engine quantises in a kernel of their own, not inside a fused op).
        dense_kernels: an MoE architecture's dense blocks (DeepSeek's first ``first_k_dense_replace``),
            where they differ; None: as ``kernels``.
        dense_quantised_inputs: ``quantised_inputs`` of those dense blocks.
        min_hidden_size: the count holds for a hidden size above this (the engine fuses only there).
        needs_tp: the count holds only under tensor parallelism (the fused ops are all-reduces).
        needs_no_ep: the count holds only without expert parallelism (the engine fuses the shared
            expert into the routed experts only there).
        source: the engine file and function the count was read from.
    """

    architecture: str
    kernels: int
    quantised_inputs: int = 0
    dense_kernels: int | None = None
    dense_quantised_inputs: int = 0
    min_hidden_size: int = 0
    needs_tp: bool = False
    needs_no_ep: bool = False
    source: str = ""

    def applies(self, architecture: str, hidden_size: int, tp: int, ep: int = 1) -> bool:
        """This count describes a block of ``architecture`` and ``hidden_size`` at ``tp`` and ``ep``."""
        return (
            architecture == self.architecture
            and hidden_size > self.min_hidden_size
            and (tp > 1 or not self.needs_tp)
            and (ep <= 1 or not self.needs_no_ep)
        )

    def per_block(self, *, dense: bool, quantised: bool) -> int:
        """The kernels of one block: a dense block of an MoE architecture when ``dense``, with the
        input quantisations when ``quantised`` (activations of 8 bits or fewer)."""
        if dense and self.dense_kernels is not None:
            return self.dense_kernels + int(quantised) * self.dense_quantised_inputs
        return self.kernels + int(quantised) * self.quantised_inputs


#: TensorRT-LLM's PyTorch backend, Llama (tensorrt_llm/_torch/models/modeling_llama.py
#: LlamaDecoderLayer): with tensor parallelism and a hidden size above 4096 (``enable_fusion``,
#: ``PRE_MLP_FUSION`` and ``POST_MLP_FUSION``; TRTLLM_LLAMA_EAGER_FUSION_DISABLED unset) each
#: all-reduce carries the residual add, the RMSNorm and, for fp8/NVFP4 checkpoints, the next GEMM
#: input's quantisation (AllReduceFusionOp RESIDUAL_RMS_NORM[_QUANT_FP8|_QUANT_NVFP4]): the
#: post-MLP one is the next block's input norm. The block launches the QKV GEMM, the attention op
#: (modules/attention.py Attention.forward: one thop attention call that applies RoPE, writes the KV
#: cache and quantises the output projection's input), the output projection, the fused
#: all-reduce, the gate-up GEMM, the SwiGLU activation, the down GEMM and the second fused
#: all-reduce: 8 kernels; an 8-bit or narrower checkpoint adds the down GEMM's input quantisation.
TRTLLM_LLAMA_FUSED = EagerBlockKernels(
    architecture="LlamaForCausalLM",
    kernels=8,
    quantised_inputs=1,
    min_hidden_size=4096,
    needs_tp=True,
    source="TensorRT-LLM tensorrt_llm/_torch/models/modeling_llama.py LlamaDecoderLayer.__init__ "
    "(enable_fusion = hidden_size > 4096; PRE_MLP_FUSION/POST_MLP_FUSION = mapping.has_tp(); "
    "pre/post_mlp_fusion_op RESIDUAL_RMS_NORM[_QUANT_FP8|_QUANT_NVFP4]) and forward; "
    "modules/attention.py Attention.forward (one attention op: RoPE, KV write, output quantisation)",
)

#: TensorRT-LLM's PyTorch backend, DeepSeek-V3/R1 (tensorrt_llm/_torch/models/modeling_deepseekv3.py
#: DeepseekV3DecoderLayer, read at commits a43cf9e363d5 and 000561df0bd7, untagged, with the same
#: fusion logic; modules/attention.py MLA at 00547a25ac61, the context path as since PR 6538, Aug
#: 2025, before the rows' 1.1/1.2; fused_moe/fused_moe_cutlass.py at 000a01de66f0, the commit of
#: version.py 1.0.0rc4). Under TP without attention DP (``enable_fusion``, default on, is
#: ``not enable_attention_dp``) an MoE block (PRE_MOE_FUSION = POST_MOE_FUSION = has_tp) runs MLA
#: (forward_impl, forward_context_default): the q_a/kv_a GEMM (kv_a_proj_with_mqa), the q_a and
#: kv_a RMSNorms, q_b_proj, the latent-cache concat, kv_b_proj, the copy of k_nope into k (RoPE
#: and the cache write are inside the attention op since the separate-QKV context layout), the
#: attention op, o_proj with its all-reduce disabled: 9; the all-reduce fused with the residual
#: add and post_attention_layernorm (AllReduceFusionOp.RESIDUAL_RMS_NORM, no quantisation: the
#: FP8 recipe scales per 1x128 block); Deepseekv3MoE: the router GEMM (dsv3_router_gemm_op), the
#: noaux_tc routing op, the CUTLASS fused_moe op (its FP8 block-scale input quantisation inside),
#: the shared experts' gate-up GEMM, SwiGLU and down GEMM, and the shared + routed add; the
#: all-reduce fused with the residual and the next block's input norm: 18. The 3 dense blocks
#: (PRE_MLP_FUSION only for NVFP4, so o_proj all-reduces on its own): MLA 9, o_proj's all-reduce,
#: the add + post_attention_layernorm, gate-up, SwiGLU, down, the fused all-reduce: 15. With the
#: FP8 block-scale recipe each Linear quantises its input in a kernel of its own (modules/linear.py
#: on Hopper: fp8_quantize_1x128, then fp8_block_scaling_gemm; on SM100 the fp8_swap_ab_gemm op
#: launches per_token_quant_and_transform, then DeepGEMM): MLA's 4 GEMMs and the (shared) MLP's 2,
#: 6 a block. Not counted: the attention-DP layout (no fusion, MoE all-gather and
#: reduce-scatter), the TRTLLM/DeepGEMM MoE backends, the NVFP4 checkpoint's own quantisations,
#: the fused routing's separate sigmoid kernel of versions before ~Nov 2025 (one kernel a block).
TRTLLM_DEEPSEEK_V3_FUSED = EagerBlockKernels(
    architecture="DeepseekV3ForCausalLM",
    kernels=18,
    quantised_inputs=6,
    dense_kernels=15,
    dense_quantised_inputs=6,
    needs_tp=True,
    source="TensorRT-LLM tensorrt_llm/_torch/models/modeling_deepseekv3.py DeepseekV3DecoderLayer "
    "(enable_fusion &= not enable_attention_dp; PRE_MOE_FUSION/POST_MOE_FUSION = has_tp; forward_MoE, "
    "forward_mlp), Deepseekv3MoE.forward, DeepseekV3Gate; modules/attention.py MLA.forward_impl and "
    "forward_context_default; modules/fused_moe/fused_moe_cutlass.py forward_chunk; modules/linear.py "
    "FP8 block-scale apply (fp8_quantize_1x128 + fp8_block_scaling_gemm); modules/gated_mlp.py",
)

#: TensorRT-LLM's PyTorch backend, Qwen3-MoE (tensorrt_llm/_torch/models/modeling_qwen3_moe.py
#: Qwen3MoEDecoderLayer, read at 03441af14b66 and in a mid-2025 copy with the same fusion block):
#: under TP without attention DP, PRE_MOE_FUSION = has_tp (no hidden-size condition, unlike Llama)
#: and POST_MOE_FUSION = PRE_MOE_FUSION and not has_pp. The block: Qwen3Attention's QKV GEMM, the
#: fused q/k RMSNorm + RoPE op (fuse_qk_norm_rope, default True since PR 4611, May 2025), the
#: attention op, o_proj with its all-reduce disabled; the all-reduce fused with the residual and
#: post_attention_layernorm; Qwen3Gate's GEMM (cublas_mm), the routing op (renorm_moe_routing_op
#: for up to 128 experts and top-8, PR 4955, June 2025), the CUTLASS fused_moe op; the all-reduce
#: fused with the residual and the next block's input norm: 9. With the FP8 block-scale checkpoint
#: the QKV and o_proj GEMMs quantise their inputs in kernels of their own (fused_moe quantises
#: inside): 2.
TRTLLM_QWEN3_MOE_FUSED = EagerBlockKernels(
    architecture="Qwen3MoeForCausalLM",
    kernels=9,
    quantised_inputs=2,
    needs_tp=True,
    source="TensorRT-LLM tensorrt_llm/_torch/models/modeling_qwen3_moe.py Qwen3MoEDecoderLayer "
    "(enable_fusion &= not enable_attention_dp; PRE_MOE_FUSION = has_tp) and forward, Qwen3MoE.forward, "
    "Qwen3Gate; modeling_qwen3.py Qwen3Attention (fuse_qk_norm_rope); modules/fused_moe/routing.py "
    "RenormalizeMoeRoutingMethod (renorm_moe_routing_op); fused_moe_cutlass.py forward_chunk",
)

#: SGLang, DeepSeek-V3/R1 (python/sglang/srt/models/deepseek_v2.py and
#: models/deepseek_common/attention_forward_methods/forward_mha.py of the 0.5.9 wheel, the version of
#: the bundled SGLang DeepSeek rows), a prompt step without a cached prefix on Hopper under TP8
#: without expert parallelism or attention DP. The prompt takes the MHA path
#: (deepseek_common/attention_backend_handler.py: fa3 with no prefix -> MHA_ONE_SHOT):
#: forward_normal_prepare launches the q_a/kv_a GEMM (fetch_qkv_latent), q_a_layernorm, q_b_proj,
#: kv_a_layernorm, RoPE (one sgl-kernel op, in place on the q_pe view of q, so that assigning q_pe
#: back into q is a copy of a tensor onto itself, which PyTorch's copy_ skips), the latent-cache
#: write (set_mla_kv_buffer), kv_b_proj, the key assembly (concat_and_cast_mha_k); then the
#: attention (FA3's varlen op takes the strided v as it is) and o_proj (its all-reduce left to the
#: communicator): 10. server_args.py enables FlashInfer's
#: all-reduce fusion for DeepseekV3ForCausalLM on SM90/SM100 (one node, no attention DP), so for a
#: step of up to 2,048 tokens (communicator.py FUSE_ALLREDUCE_MAX_BATCH_SIZE) both all-reduces
#: carry the residual add and RMSNorm (RMSNorm.forward_with_allreduce_fusion; the MoE's is the
#: next block's input norm). An MoE block: that fused op, MLA 10, the post-attention fused op,
#: the router GEMM (F.linear), its cast to fp32 and moe_fused_gate (DeepseekV2MoE.forward_normal;
#: the shared expert is one more expert of the fused MoE, num_fused_shared_experts, unless expert
#: parallelism or --disable-shared-experts-fusion), then the Triton fused MoE (moe_runner/triton.py):
#: moe_align_block_size, the two grouped GEMMs with silu_and_mul between, moe_sum_reduce: 20. A
#: dense block (the first 3): fused op, MLA 10, fused op, gate-up, SiluAndMul, down: 15. With the
#: FP8 block-scale checkpoint every Linear and each grouped GEMM quantises its input in a kernel
#: of its own (fp8_utils.py deepgemm_w8a8_block_fp8_linear_with_fallback:
#: sglang_per_token_group_quant_fp8, then the DeepGEMM GEMM; fused_moe_triton_kernels.py
#: invoke_fused_moe_kernel likewise): MLA's 4 GEMMs and the 2 of the experts or the dense MLP, 6.
#: On Blackwell SGLang 0.5.9 runs the routed experts in FlashInfer's TRT-LLM op instead
#: (flashinfer_trtllm, with the shared expert apart): 21 + 6 a MoE block, one more than counted
#: here, which stands for both. Not counted: a step over 2,048 tokens (all-reduce and norm apart,
#: 2 more a block; its GPU time hides the launches anyway), 0.5.6's forward_normal_prepare, which
#: ran kv_b_proj twice, the absorbed MLA path of a prefix under
#: SGL_CHUNKED_PREFIX_CACHE_THRESHOLD (8,192 tokens), the NVFP4 checkpoints' own quantisations.
SGLANG_DEEPSEEK_V3 = EagerBlockKernels(
    architecture="DeepseekV3ForCausalLM",
    kernels=20,
    quantised_inputs=6,
    dense_kernels=15,
    dense_quantised_inputs=6,
    needs_tp=True,
    needs_no_ep=True,
    source="SGLang 0.5.9 python/sglang/srt/models/deepseek_v2.py DeepseekV2DecoderLayer.forward, "
    "DeepseekV2MoE.forward_normal, MoEGate.forward; models/deepseek_common/attention_forward_methods/"
    "forward_mha.py forward_normal_prepare/forward_normal_core; attention_backend_handler.py "
    "(fa3: MHA_ONE_SHOT without a prefix); layers/communicator.py apply_flashinfer_allreduce_fusion "
    "(server_args.py enables it for DeepseekV3ForCausalLM on SM90/SM100); layers/moe/topk.py "
    "biased_grouped_topk_gpu (moe_fused_gate); layers/moe/moe_runner/triton.py; "
    "layers/quantization/fp8_utils.py (per-token-group quantisation, then the GEMM)",
)

#: SGLang, Qwen3-MoE (python/sglang/srt/models/qwen3_moe.py of the 0.5.6.post2 wheel, the version
#: of the bundled SGLang Qwen3-235B rows) under TP on Hopper (fa3, is_fa3_default_architecture),
#: bf16 KV cache. Qwen3MoeDecoderLayer.forward: the fused add-RMSNorm (prepare_attn); Qwen3MoeAttention:
#: the QKV GEMM, then, with enable_fused_qk_norm_rope off by default, _apply_qk_norm: q and k are
#: column slices of the QKV output, so reshape(-1, head_dim) copies each before its RMSNorm (4),
#: RoPE with the K/V cache write fused into it (enable_fused_set_kv_buffer: bf16 cache on CUDA),
#: the attention (save_kv_cache False), o_proj; prepare_mlp: the all-reduce, then the fused
#: add-RMSNorm (0.5.6 enables FlashInfer's all-reduce fusion itself only on SM100, for DeepSeek/GPT-OSS);
#: Qwen3MoeSparseMoeBlock.forward_normal: the gate GEMM (bf16), topk_softmax (renormalising inside),
#: the Triton fused MoE (moe_align_block_size, two grouped GEMMs, silu_and_mul, moe_sum_reduce) and
#: the all-reduce: 19. The FP8 block-scale checkpoint quantises the inputs of QKV, o_proj and the
#: two grouped GEMMs: 4. (From 0.5.9 server_args.py fuses both all-reduces with their norms for
#: Qwen3MoeForCausalLM on SM90/SM100 too, 2 fewer; not counted: the bundled rows ran 0.5.6.post2.)
SGLANG_QWEN3_MOE = EagerBlockKernels(
    architecture="Qwen3MoeForCausalLM",
    kernels=19,
    quantised_inputs=4,
    needs_tp=True,
    source="SGLang 0.5.6.post2 python/sglang/srt/models/qwen3_moe.py Qwen3MoeDecoderLayer.forward, "
    "Qwen3MoeAttention.forward_prepare_native/apply_qk_norm_rope/_apply_qk_norm/forward_core, "
    "Qwen3MoeSparseMoeBlock.forward_normal; layers/communicator.py; layers/moe/topk.py fused_topk "
    "(topk_softmax); layers/moe/moe_runner/triton.py; models/utils.py enable_fused_set_kv_buffer",
)

#: SGLang, Llama (python/sglang/srt/models/llama.py of the 0.5.6.post2 wheel) on Hopper (fa3):
#: LlamaDecoderLayer.forward launches the fused add-RMSNorm, the QKV GEMM, RoPE (in place on the
#: slices of the QKV output), the K and V cache writes (mem_cache/memory_pool.py
#: MHATokenToKVPool.set_kv_buffer: one index_put each), the copy of q that the FA3 backend makes
#: contiguous (flashattention_backend.py forward_extend, q.contiguous()), the attention, o_proj and
#: its all-reduce (RowParallelLinear), the fused add-RMSNorm, gate-up, SiluAndMul, down and its
#: all-reduce: 14 under TP, 12 on one GPU; at fp8 the four GEMMs quantise their inputs (4). The
#: older SGLang of the bundled rate rows ran FlashInfer attention; 0.3.0's (benchmark_vllm_060)
#: layers/radix_attention.py extend_forward_flashinfer also writes K and V apart and copies q to
#: contiguous (and k and v too on its ragged path), so this count is a floor for it.
SGLANG_LLAMA_TP = EagerBlockKernels(
    architecture="LlamaForCausalLM",
    kernels=14,
    quantised_inputs=4,
    needs_tp=True,
    source="SGLang 0.5.6.post2 python/sglang/srt/models/llama.py LlamaDecoderLayer/LlamaAttention/"
    "LlamaMLP.forward; mem_cache/memory_pool.py MHATokenToKVPool.set_kv_buffer; "
    "layers/attention/flashattention_backend.py forward_extend",
)
#: as :data:`SGLANG_LLAMA_TP` on one GPU: no all-reduces, 12
SGLANG_LLAMA = dataclasses.replace(SGLANG_LLAMA_TP, kernels=12, needs_tp=False)

#: each engine's own per-architecture block counts (:class:`EagerBlockKernels`); an architecture
#: without one (and every engine not named) takes the generic count of genmodel._hostcost. The
#: first entry that applies is taken (SGLang's Llama under TP before the one-GPU count).
EAGER_BLOCK_KERNELS: dict[str, tuple[EagerBlockKernels, ...]] = {
    "trtllm": (TRTLLM_LLAMA_FUSED, TRTLLM_DEEPSEEK_V3_FUSED, TRTLLM_QWEN3_MOE_FUSED),
    "sglang": (SGLANG_DEEPSEEK_V3, SGLANG_QWEN3_MOE, SGLANG_LLAMA_TP, SGLANG_LLAMA),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class HostBoundPrefill:
    """A published eager prefill whose time is flat in its tokens (host-bound), with the kernels
    its forward launched, counted from its engine's model code by this module's convention.

    Attributes:
        time_s: the step's measured time, seconds.
        launches: the kernels one forward launched (blocks plus the 4 of embedding, final norm,
            LM head and sampling, as genmodel._hostcost counts them).
        source: where the time was published and the code the count was read from.
    """

    time_s: float
    launches: int
    source: str

    @property
    def launch_s(self) -> float:
        """Host time per kernel launch this measurement implies."""
        return self.time_s / self.launches


#: SGLang PR 12160 (Oct 2025, main of 2025-10-14, between the 0.5.3 and 0.5.4 wheels): DeepSeek-V3
#: FP8 under TP ("TP0" in the log; 8 GPUs of a Hopper part taken, the hardware is not named), a
#: prefill of 1 new token on 1 cached token, "forward cost" 82.64 ms, about the same below 100 new
#: tokens. A cached prefix under SGL_CHUNKED_PREFIX_CACHE_THRESHOLD (8,192) sends fa3/FlashInfer to the
#: absorbed MLA path (deepseek_v2.py 0.5.4 _handle_attention_backend -> MLA, forward_absorb_prepare
#: and forward_absorb_core): the q_a/kv_a GEMM, the two latent norms, q_b_proj, the w_kc bmm (the
#: block-FP8 kv_b weights are dequantised to bf16 at load, so torch.bmm), RoPE, the latent-cache
#: write and the attention (the fa3 backend), the w_vc bmm and o_proj: 10, the quantised inputs of
#: the 3 FP8 Linears: 3. Without FlashInfer's all-reduce fusion on Hopper in 0.5.4, an MoE block adds
#: the input add-RMSNorm, the all-reduce and add-RMSNorm after attention, the router (one token:
#: dsv3_router_gemm, fp32 out), moe_fused_gate, the Triton fused MoE (align, two grouped GEMMs,
#: silu_and_mul, sum) and the all-reduce: 21 + 5 quantised; a dense block: norm, MLA 10, all-reduce,
#: norm, gate-up, SiluAndMul, down, all-reduce: 17 + 5. 58 x 26 + 3 x 22 + 4 = 1,578 launches.
SGLANG_PR12160_PREFILL = HostBoundPrefill(
    time_s=82.64e-3,
    launches=58 * (21 + 5) + 3 * (17 + 5) + 4,
    source="sglang PR 12160 (forward cost 82.64 ms, 1 new token, 1 cached); sglang 0.5.4 "
    "python/sglang/srt/models/deepseek_v2.py forward_absorb_prepare/forward_absorb_core, "
    "DeepseekV2MoE.forward_normal, layers/communicator.py",
)

#: sfllm PR 46 (wejoncy/sfllm, "feat: add full prefill CUDA graphs"): Qwen3-4B bf16 on one GPU,
#: Triton attention, an eager prefill of 16.613 ms at 129 tokens and 16.371 ms at 513 (CUDA graphs:
#: 5.685 and 13.729 ms). sfllm's python/sfllm/models/qwen3.py Qwen3DecoderLayer launches the fused
#: add-RMSNorm (FlashInfer's, layers/layernorm.py), the QKV GEMM, one op for the q/k norms, RoPE and
#: the cache write (torch.ops.sfkernels.qk_norm_rope_and_cache; the forward metadata always holds
#: the cache, engine/forward_params.py), the copies of k and v, column slices of the QKV output,
#: that the Triton backend makes contiguous (layers/triton_attention.py RaggedAttention.forward_extend),
#: the attention (save_kv_cache False), o_proj, the fused add-RMSNorm, gate-up, silu_and_mul (one
#: sfkernels op) and down: 11 a block, 36 blocks.
SFLLM_PR46_PREFILL = HostBoundPrefill(
    time_s=16.613e-3,
    launches=36 * 11 + 4,
    source="wejoncy/sfllm PR 46 (eager 16.613 ms at 129 tokens); python/sfllm/models/qwen3.py "
    "Qwen3Attention.forward, Qwen3DecoderLayer.forward; layers/triton_attention.py; layers/layernorm.py; "
    "layers/activations.py",
)

#: the host-bound measurements genmodel._enginepresets.PREFILL_LAUNCH_S is the mean of
HOST_BOUND_PREFILLS = (SGLANG_PR12160_PREFILL, SFLLM_PR46_PREFILL)


# Decode steps run eagerly too where the engine has no CUDA graph for their batch size:
#: the largest decode batch SGLang 0.3-0.4 captures as a CUDA graph on a GPU of 25 GB or more: 0.3's
#: cuda_graph_runner.py captures [1, 2, 4] + [8 i for i in 1..20] (largest 160); 0.4's server_args.py
#: "Set cuda graph max batch size": ``cuda_graph_max_bs`` 8 below 25 GB of GPU memory, else 160. A
#: larger decode batch runs the model eagerly (CudaGraphRunner.can_run: bs <= max_bs)
SGLANG_04_GRAPH_MAX_BS = 160
#: the decode batch sizes SGLang 0.3-0.4 captures and pads a batch up to: [1, 2, 4] + [8 i for i in
#: 1..20] (0.3's and 0.4's model_executor/cuda_graph_runner.py, ``disable_cuda_graph_padding``
#: False by default; CudaGraphRunner.replay pads ``raw_bs`` to ``capture_bs[bisect_left(capture_bs,
#: raw_bs)]``)
SGLANG_04_GRAPH_SIZES = (1, 2, 4, *range(8, 161, 8))
#: SGLang 0.5's default ``cuda_graph_max_bs`` below TP4 and from TP4 on, by the GPU memory (MiB) it
#: is below (python/sglang/srt/server_args.py ``_handle_gpu_memory_settings``, 0.5.6.post2 and 0.5.9
#: alike; the server's ``tp_size`` spans the attention-DP ranks: T4 8; A10,
#: 4090 24 / 80; A100-40G, L40 32 / 160; H100, A100-80G, H20, H200 256 / 512; B200, MI300 512); the
#: graphs cover sizes up to it (``_generate_cuda_graph_batch_sizes``), a batch is padded up to the next,
#: and a larger one runs eagerly (model_executor/cuda_graph_runner.py ``can_run``: bs <= max_bs)
SGLANG_GRAPH_MAX_BS = ((20 * 1024, 8, 8), (35 * 1024, 24, 80), (60 * 1024, 32, 160), (160 * 1024, 256, 512))
#: the decode batch sizes SGLang 0.5 captures, up to its ``cuda_graph_max_bs`` (python/sglang/srt/
#: server_args.py ``_generate_cuda_graph_batch_sizes``, no speculative decoding, padding on by
#: default: [1, 2, 4, 8, 12] + range(16, 257, 8) + range(272, 512, 16) + range(512, max + 1, 32));
#: a graphed batch replays the least of them at least its size
#: (model_executor/cuda_graph_runner.py replay_prepare: ``bisect.bisect_left(self.capture_bs,
#: raw_bs)``), the padding sequences' lengths set to the fill value (one token)
SGLANG_GRAPH_SIZES = (1, 2, 4, 8, 12, *range(16, 257, 8), *range(272, 512, 16), 512)
#: TensorRT-LLM 1.0's decode graphs under trtllm-serve, which sets no ``cuda_graph_config``
#: (tensorrt_llm/commands/serve.py get_llm_args): llmapi/llm_args.py TorchLlmArgs ``cuda_graph_config``
#: default_factory CudaGraphConfig (max_batch_size 0 -> 128, enable_padding False), whose
#: _generate_cuda_graph_batch_sizes gives 1-31, 32, 64, 128; without padding only those sizes replay
#: (_torch/pyexecutor/cuda_graph_runner.py maybe_get_cuda_graph: a batch size not in
#: supported_batch_sizes runs the model eagerly)
TRTLLM_GRAPH_SIZES = (*range(1, 32), 32, 64, 128)
#: vLLM V1's largest CUDA-graph capture size: min(2 x max_num_seqs, 512), at most max_num_batched_tokens
#: (0.10: vllm/config SchedulerConfig ``cuda_graph_sizes``; from 0.11 vllm/config/vllm.py
#: ``_set_cudagraph_sizes``, CompilationConfig ``max_cudagraph_capture_size``); a step of more tokens runs
#: the torch.compile'd model without graphs (cudagraph_dispatcher: CUDAGraphMode.NONE), whose host time
#: is not modelled (the vLLM preset's prefill_launch_s is 0), so this limit changes no step's cost
VLLM_GRAPH_MAX = 512
#: vLLM 0.10 V1's CUDA-graph capture sizes (vllm/config.py VllmConfig._set_cudagraph_sizes: [1, 2, 4]
#: + range(8, cuda_graph_sizes[0] + 1, 8)), up to the limit above; a step of at most the largest
#: runs at the least capture size at least its tokens (``VllmConfig.pad_for_cudagraph``:
#: CompilationConfig.bs_to_padded_graph_size; v1/worker/gpu_model_runner.py pads
#: ``num_input_tokens`` so). From 0.11 the list is [1, 2, 4] + range(8, 256, 8) + range(256,
#: max + 1, 16) (vllm/config/vllm.py), the same sizes up to 256
VLLM_GRAPH_SIZES = (1, 2, 4, *range(8, VLLM_GRAPH_MAX + 1, 8))
