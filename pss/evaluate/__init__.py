"""Evaluating subnets: BN calibration on a copy of the supernet (torch, :mod:`.calibration`) and
choosing among calibrated subnets (Eq. 5, torch-free, :mod:`.selection`).
"""
