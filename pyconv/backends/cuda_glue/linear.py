"""Launch glue of linear layers on the tiled GEMM (kernels/gemm.cu).

No kernels yet: these contract kernels run on the reference (issue 5).
"""

__all__ = []
