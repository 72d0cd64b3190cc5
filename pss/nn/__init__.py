"""How a layer is sliced (torch): slimmable ops, the supernet and the dense subnet, built from one
block spec (:mod:`pss.problem.spec`). Ops take the widths to use as arguments and know nothing of
pools or sampling.
"""
