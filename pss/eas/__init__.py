"""Elastic Architecture Search (EAS): an architecture generator for (superclass, budget) scenarios.

``gates`` encodes a structure as nested binary gates (single-path) and computes
its cost differentiably; ``generator`` is the LSTM that maps a scenario to gate
probabilities; ``search`` trains it on the validation split (Alg. 1) and draws,
calibrates and scores architectures for scenarios. Superclass dropout, the
training half of EAS, lives with the trainer (:mod:`pss.training.superclass_dropout`).
"""
