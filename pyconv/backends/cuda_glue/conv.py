"""Launch glue of conv2d, its gradients, depthwise and conv_transpose2d (kernels/conv2d.cu).

No kernels yet: these contract kernels run on the reference (issue 5).
"""

__all__ = []
