"""Measuring latency (torch; PSS-Net Sec. 4.2, Fig. 3): the timing protocol (:mod:`.timing`),
building a lookup table of every block variant (:mod:`.build`) and checking its predictions
against whole models timed end to end (:mod:`.check`). The compiled table that answers C(phi)
in milliseconds is torch-free and lives with the costs (:mod:`pss.problem.latency_table`);
LUT files are read and written by :mod:`pss.io.lut`.
"""
