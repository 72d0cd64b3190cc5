"""What the problem is, without torch: the block spec, the structure space S, costs C(.) and budgets Theta.

Modules: :mod:`.spec` (the block specification), :mod:`.models` (one family a
file), :mod:`.space` (S and the canonical :class:`~.space.Structure`),
:mod:`.costs` (multiply-adds and parameters), :mod:`.latency_table` (latency
as a cost), :mod:`.budgets` (Theta, Eq. 1-2) and :mod:`.problem` (all of them
built from a config).
"""
