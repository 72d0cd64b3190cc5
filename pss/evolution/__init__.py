"""PSE-Net's prior-guided evolutionary search, without torch: the loss records of a run (Eq. 17-19),
the prior over structures in a budget band (Eq. 15-16, 20) and the evolutionary operators (Sec. 3.4).
The search workflow (:mod:`pss.workflows.search`) evaluates candidates with BN calibration.
"""
