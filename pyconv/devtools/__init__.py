"""Developer tools: the CUDA compile gates (not needed to use pyconv).

- :mod:`.cuda_compile` runs nvcc, NVRTC and cuobjdump on ``kernels/*.cu`` and parses what they
  report (registers, shared memory, spills, SASS).
- :mod:`.cuda_budgets` holds the per-kernel register / shared-memory budgets
  (``kernels/budgets.json``); ``python -m pyconv.devtools.cuda_budgets [--write]``.
- :mod:`.sass_checks` holds the claims about each kernel's machine code
  (``kernels/sass_checks.json``): required and forbidden SASS opcodes.

``docs/compile_gates.md`` says what the gates check and how to update the tables.
"""
