"""Take an algorithm out of azdsl: a standalone numpy module (numpy_module) and the algorithm
as math for a paper, in LaTeX or Markdown (math_text). `azdsl export` prints either."""
