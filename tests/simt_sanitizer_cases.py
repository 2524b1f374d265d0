"""Tiny launches of the model kernels (conv2d.cu, gemm.cu, rnn.cu) for the sanitizer job.

Run as a script by tests/test_simt_kernel_sanitizers.py in a subprocess whose kernels are built
with ``PYCONV_SIMT_OPTIONS`` (a sanitizer) and whose Python has the sanitizer runtime preloaded:
``python simt_sanitizer_cases.py conv|gemm|rnn``. Each case calls one contract kernel on the simt
backend and on the NumPy reference, prints ``ok <case>``, and exits 3 on a numerical mismatch
(a sanitizer finding aborts the process with the sanitizer's own exit code and report).

The cases cover each kernel variant the glue can pick: both conv tiles, the float4 and scalar
weight paths, depthwise, 1x1, stride/padding/dilation/groups with sizes that are not multiples of
the tiles; the vec4 and scalar GEMMs with transposes; every cell and sequence forward/backward.
"""

from __future__ import annotations

import sys

import numpy as np

from pyconv.backends import numpy_ref, simt


def rand(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def check(name, ours, want):
    ours = ours if isinstance(ours, tuple) else (ours,)
    want = want if isinstance(want, tuple) else (want,)
    for a, b in zip(ours, want):
        if a is None or b is None:
            continue
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        if a.shape != b.shape or not np.allclose(a, b, rtol=1e-4, atol=1e-4):
            print(f"MISMATCH {name}: max abs error {np.max(np.abs(a - b)) if a.shape == b.shape else a.shape}",
                  flush=True)
            sys.exit(3)
    print(f"ok {name}", flush=True)


def both(name, kernel, *args):
    check(name, getattr(simt, kernel)(*args), getattr(numpy_ref, kernel)(*args))


# (N, C, H, W, K, R, S, stride, padding (t, b, l, r), dilation, groups)
CONV_CASES = {
    "generic": (2, 3, 7, 6, 5, 3, 3, (2, 1), (1, 1, 1, 1), (1, 2), 1),
    "groups": (1, 4, 5, 5, 6, 3, 2, (1, 1), (0, 1, 1, 0), (1, 1), 2),
    "float4 weights": (1, 4, 6, 6, 8, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 1),
    "depthwise": (2, 3, 6, 5, 3, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 3),
    "first layer": (2, 1, 9, 9, 3, 5, 5, (1, 1), (2, 2, 2, 2), (1, 1), 1),
}


def conv_cases(rng):
    for label, (N, C, H, W, K, R, S, stride, pad, dil, G) in CONV_CASES.items():
        x, w, b = rand(rng, N, C, H, W), rand(rng, K, C // G, R, S), rand(rng, K)
        y = numpy_ref.conv2d_forward(x, w, b, stride, pad, dil, G)
        gy = rand(rng, *y.shape)
        both(f"conv2d_forward {label}", "conv2d_forward", x, w, b, stride, pad, dil, G)
        both(f"conv2d_backward_input {label}", "conv2d_backward_input", gy, w, x.shape, stride, pad, dil, G)
        both(f"conv2d_backward_weight {label}", "conv2d_backward_weight", gy, x, w.shape, stride, pad, dil, G)


def gemm_cases(rng):
    for label, (N, I, O) in {"scalar": (3, 5, 7), "vec4": (4, 8, 12)}.items():
        x, w, b = rand(rng, N, I), rand(rng, O, I), rand(rng, O)
        gy = rand(rng, N, O)
        both(f"linear_forward {label}", "linear_forward", x, w, b)
        both(f"linear_backward_input {label}", "linear_backward_input", gy, w)
        both(f"linear_backward_weight {label}", "linear_backward_weight", gy, x)


def rnn_cases(rng):
    B, I, H, T = 2, 3, 5, 3
    x, h, c = rand(rng, B, I), rand(rng, B, H), rand(rng, B, H)
    for cell, gates in (("rnn_tanh", 1), ("rnn_relu", 1), ("lstm", 4), ("gru", 3)):
        w_ih, w_hh = rand(rng, gates * H, I), rand(rng, gates * H, H)
        b_ih, b_hh = rand(rng, gates * H), rand(rng, gates * H)
        state = (h, c) if cell == "lstm" else (h,)
        fwd = getattr(numpy_ref, f"{cell}_cell_forward")(x, *state, w_ih, w_hh, b_ih, b_hh)
        both(f"{cell}_cell_forward", f"{cell}_cell_forward", x, *state, w_ih, w_hh, b_ih, b_hh)
        g = rand(rng, B, H)
        if cell == "lstm":
            h_new, c_new, saved = fwd
            args = (g, rand(rng, B, H), x, h, c, w_ih, w_hh, saved, c_new)
        elif cell == "gru":
            args = (g, x, h, w_ih, w_hh, fwd[1])
        else:
            args = (g, x, h, w_ih, w_hh, fwd)
        both(f"{cell}_cell_backward", f"{cell}_cell_backward", *args)

        xs = rand(rng, T, B, I)
        for reverse in (False, True):
            seq = getattr(numpy_ref, f"{cell}_sequence_forward")(xs, *state, w_ih, w_hh, b_ih, b_hh, reverse)
            both(f"{cell}_sequence_forward reverse={reverse}", f"{cell}_sequence_forward",
                 xs, *state, w_ih, w_hh, b_ih, b_hh, reverse)
            out = seq[0]
            grads = (rand(rng, *out.shape), rand(rng, B, H)) + ((rand(rng, B, H),) if cell == "lstm" else ())
            if cell == "lstm":
                args = (*grads, xs, h, c, w_ih, w_hh, out, seq[3], seq[4], reverse, True)
            elif cell == "gru":
                args = (*grads, xs, h, w_ih, w_hh, out, seq[2], reverse, True)
            else:
                args = (*grads, xs, h, w_ih, w_hh, out, reverse, True)
            both(f"{cell}_sequence_backward reverse={reverse}", f"{cell}_sequence_backward", *args)


def conv_tile64_cases(rng):
    """The same cases on the 64-wide tile (the heuristic picks 32 for shapes this small)."""
    from pyconv.backends.cuda_glue import conv

    conv.choose_tile = lambda dev, rows, cols, groups: 64
    conv_cases(rng)


GROUPS = {"conv": conv_cases, "conv64": conv_tile64_cases, "gemm": gemm_cases, "rnn": rnn_cases}

if __name__ == "__main__":
    for group in sys.argv[1:]:
        GROUPS[group](np.random.default_rng(0))
