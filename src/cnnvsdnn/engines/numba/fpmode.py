"""Flush denormal floats to zero inside the engine's kernels, on every thread that runs them.

Arithmetic on denormal (subnormal) floats can take a microcode path many times slower than the
normal one: on Intel cores a multiply or FMA with a denormal operand or result costs ~30-100x,
and Adam's moments of weights that stop learning decay into that range (a CIFAR-10 DNN's Adam
step measured 33x slower once they had). The CPU can instead flush them to zero: on x86-64 the
FTZ (bit 15) and DAZ (bit 6) bits of MXCSR, on aarch64 the FZ bit (24) of FPCR. The setting
belongs to a thread, and numba's thread pools do not pass it on reliably (workqueue and OpenMP
workers keep the mode they were created with; TBB copies the caller's), so:

- every kernel calls :func:`ftz_on` first and :func:`fp_restore` last, so numpy code in the
  calling thread keeps IEEE semantics between kernels;
- every ``prange`` body calls :func:`ftz_on` first (a worker keeps it; the call is a register
  read, ~10 ns, when already set), so element-wise loops are split into chunks first.

LLVM does not know these instructions change how later arithmetic rounds, so a value computed
*before* the call (in registers) is computed in the old mode: the call must come first.

The intrinsics are two instructions inlined into the kernel, so kernels stay cacheable. The
architecture is the one numba compiles for (the host's). Elsewhere they do nothing.
"""

from __future__ import annotations

import platform

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

_MACHINE = platform.machine().lower()
X86 = _MACHINE in ("x86_64", "amd64")
ARM64 = _MACHINE in ("arm64", "aarch64")
# the bits that flush: MXCSR FTZ | DAZ, or FPCR FZ
FLUSH_BITS = (1 << 15) | (1 << 6) if X86 else (1 << 24) if ARM64 else 0

_I32, _I64 = ir.IntType(32), ir.IntType(64)
_VOIDP = ir.IntType(8).as_pointer()


def _get(builder) -> ir.Value:
    """The calling thread's MXCSR / FPCR as an i64."""
    module = builder.module
    if X86:
        slot = cgutils.alloca_once(builder, _I32)
        fn = cgutils.get_or_insert_function(module, ir.FunctionType(ir.VoidType(), [_VOIDP]),
                                            "llvm.x86.sse.stmxcsr")
        builder.call(fn, [builder.bitcast(slot, _VOIDP)])
        return builder.zext(builder.load(slot), _I64)
    if ARM64:
        fn = cgutils.get_or_insert_function(module, ir.FunctionType(_I64, []),
                                            "llvm.aarch64.get.fpcr")
        return builder.call(fn, [])
    return ir.Constant(_I64, 0)


def _set(builder, value: ir.Value) -> None:
    module = builder.module
    if X86:
        slot = cgutils.alloca_once(builder, _I32)
        builder.store(builder.trunc(value, _I32), slot)
        fn = cgutils.get_or_insert_function(module, ir.FunctionType(ir.VoidType(), [_VOIDP]),
                                            "llvm.x86.sse.ldmxcsr")
        builder.call(fn, [builder.bitcast(slot, _VOIDP)])
    elif ARM64:
        fn = cgutils.get_or_insert_function(module, ir.FunctionType(ir.VoidType(), [_I64]),
                                            "llvm.aarch64.set.fpcr")
        builder.call(fn, [value])


@intrinsic
def ftz_on(typingctx):
    """Set flush-to-zero (and denormals-are-zero) for the calling thread; returns the register
    as it was. Writes only when a bit is missing (a write costs ~10 ns more than the read)."""

    def codegen(context, builder, sig, args):
        old = _get(builder)
        if FLUSH_BITS:
            new = builder.or_(old, ir.Constant(_I64, FLUSH_BITS))
            with builder.if_then(builder.icmp_unsigned("!=", new, old), likely=False):
                _set(builder, new)
        return old

    return types.int64(), codegen


@intrinsic
def fp_restore(typingctx, old):
    """Put back the flush bits of ``old`` (a value :func:`ftz_on` returned); writes only when
    they differ from the current ones."""

    def codegen(context, builder, sig, args):
        if FLUSH_BITS:
            bits = ir.Constant(_I64, FLUSH_BITS)
            now = _get(builder)
            new = builder.or_(builder.and_(now, ir.Constant(_I64, ~FLUSH_BITS & (2**64 - 1))),
                              builder.and_(args[0], bits))
            with builder.if_then(builder.icmp_unsigned("!=", new, now), likely=False):
                _set(builder, new)
        return context.get_dummy_value()

    return types.void(types.int64), codegen


@intrinsic
def fp_state(typingctx):
    """The calling thread's MXCSR (x86-64) or FPCR (aarch64); 0 elsewhere."""

    def codegen(context, builder, sig, args):
        return _get(builder)

    return types.int64(), codegen


@njit(nogil=True)
def thread_fp_state() -> int:
    """:func:`fp_state` of the calling Python thread (for tests)."""
    return fp_state()


def flushing(state: int) -> bool:
    """True when a register value has every flush bit set (False where none exist)."""
    return FLUSH_BITS != 0 and (state & FLUSH_BITS) == FLUSH_BITS
