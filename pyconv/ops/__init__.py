"""The op layer: one module per op family. Each public function validates its arguments
(messages name the argument, expected vs actual), normalises them for the kernel contract, and
applies an autograd Function whose forward/backward call only backend kernels."""
