"""The paper's experiments as shipped, resumable batches of runs (`azdsl experiment NAME`).

An experiment (`definitions`) is a set of cells, each a shipped config with overrides
(`configs`), run once per seed as an ordinary run folder, on several processes (`runner`),
and summed up in DIR/results.json and DIR/results.md (`results`). docs/experiments.md is the
results page.
"""
