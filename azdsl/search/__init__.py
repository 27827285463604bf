"""Searching: the config, mutation, the one per-child step, FEC, lineage, experiments.

config.py reads a search config; mutate.py is the search space and the Program-level
mutation API; kernel.py holds the per-child step (every mutation type, pruning, the caches,
hurdles, the lineage table) as array code that loop.py runs compiled; engine.py holds an
experiment's arrays; evolve.py runs experiments (Search); lineage.py reads and replays
ancestries; fec.py is the FEC probe's hash.
"""
