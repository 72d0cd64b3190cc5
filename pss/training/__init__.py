"""How subnets are trained (torch): the trainer (Alg. 1-2 and every baseline's step), its
schedules and the records of what each step and epoch did. It writes no files: the train
workflow does (:mod:`pss.workflows.train`).
"""
