"""Running programs: tasks, the evaluation protocol, and the backends that run it.

tasks.py makes the tasks; evaluate.py is the protocol (written once, compiled into every
backend); interp.py is the numpy reference interpreter, codegen.py the compiled-Python
backend, lowering.py / vm.py the search's VM; rng.py / kernels.py the random streams and the
helpers they share; compare.py and estimator.py score fixed programs for a user.
"""
