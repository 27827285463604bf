"""Running programs: tasks, the evaluation protocol, and the backends that run it.

tasks.py makes the tasks; evaluate.py is the protocol (written once, compiled into every
backend); interp.py is the numpy reference interpreter, codegen.py the compiled-Python
backend, lowering.py / vm.py the search's VM; rng.py / kernels.py the random streams and the
helpers they share; compare.py and estimator.py score fixed programs for a user.
"""

import os

# Numba's settings for the compiled backends, set here because this package is imported
# before Numba is (every azdsl import goes through azdsl/__init__.py, which imports
# azdsl.running.evaluate); a user's own NUMBA_* environment variables win.
# - Intel's SVML, when installed, gives Numba's vectorised loops their own log/cos/exp,
#   which differ from the C library's in the last bit: the backends would no longer agree
#   with the reference interpreter.
# - LLVM's SLP vectoriser, off by default in Numba, is what vectorises the VM's ops on 4- to
#   16-float cells (straight-line code once unrolled): 2-3x on matrix ops. It does not
#   reorder floating-point arithmetic, so results are unchanged.
os.environ.setdefault("NUMBA_DISABLE_INTEL_SVML", "1")
os.environ.setdefault("NUMBA_SLP_VECTORIZE", "1")
