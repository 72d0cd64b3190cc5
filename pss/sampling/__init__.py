"""How subnets are chosen, without torch: subnet pools, prioritized sampling (Eq. 3, 6, Alg. 3),
the Eq. 4 marginals and the training strategies of every system (PSS-Net, US-Net, MutualNet,
random, PSE-Net). Samplers return :class:`~pss.problem.space.Structure` values; how a layer is
sliced is :mod:`pss.nn`'s business.
"""
