"""Elastic Architecture Search (EAS): an architecture generator for (superclass, budget) scenarios.

``gates`` encodes a structure as nested binary gates (single-path) and computes
its cost differentiably; ``generator`` is the LSTM that maps a scenario to gate
probabilities; ``search`` trains it on the validation split (Alg. 1) and draws,
calibrates and scores architectures for scenarios; ``baselines`` are the methods
it is compared with (uniform draws within the budget, OFA-T, OFA-V); ``draws``
tallies every draw within a ceiling (the in-budget rate); ``comparison`` holds the
torch-free statistics of a fair comparison (pooled superclass means without
one-class superclasses, effort, Holm-adjusted paired tests). Superclass dropout,
the training half of EAS, lives with the trainer (:mod:`pss.training.superclass_dropout`).
"""
