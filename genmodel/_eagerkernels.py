"""Engines' own counts of the kernels one decoder block launches in an eager forward (a step with
prefill tokens), read from each engine's model code, by architecture.

Modelling assumptions:
- A kernel is one launch the Python model code dispatches (the convention of
  :func:`genmodel._hostcost.eager_launches`' generic count); an engine's count replaces the generic
  one only for the architecture, hidden sizes and parallelism its source names.
- An architecture without a count here, and every engine not named, takes the generic count.
"""

from __future__ import annotations

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
        source: the engine file and function the count was read from.
    """

    architecture: str
    kernels: int
    quantised_inputs: int = 0
    dense_kernels: int | None = None
    dense_quantised_inputs: int = 0
    min_hidden_size: int = 0
    needs_tp: bool = False
    source: str = ""

    def applies(self, architecture: str, hidden_size: int, tp: int) -> bool:
        """This count describes a block of ``architecture`` and ``hidden_size`` at ``tp``."""
        return (
            architecture == self.architecture
            and hidden_size > self.min_hidden_size
            and (tp > 1 or not self.needs_tp)
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

#: each engine's own per-architecture block counts (:class:`EagerBlockKernels`); an architecture
#: without one (and every engine not named) takes the generic count of genmodel._hostcost
EAGER_BLOCK_KERNELS: dict[str, tuple[EagerBlockKernels, ...]] = {
    "trtllm": (TRTLLM_LLAMA_FUSED, TRTLLM_DEEPSEEK_V3_FUSED, TRTLLM_QWEN3_MOE_FUSED),
}
