"""Scaling out: islands of one experiment on every core, or on a Ray cluster.

islands.py is an island (a Search run a segment at a time); parallel.py the driver that
migrates between islands, checkpoints them and survives lost workers; workers.py what the
driver and its pools share; local_pool.py and ray_pool.py the pools.
"""
