"""Launch glue of RNN, LSTM and GRU cells: gate GEMMs + fused pointwise kernels (kernels/rnn.cu).

No kernels yet: these contract kernels run on the reference (issue 5).
"""

__all__ = []
