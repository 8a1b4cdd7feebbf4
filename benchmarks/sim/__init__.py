"""The strategy lab: replay a workload through placement strategies and compare them.

``vecsched sim`` (benchmarks/sim_command.py) is the command; this package is
its machinery, one concern per module:

- ``model``     the records passed around (SimPod) and the input error type
- ``loaders``   clusters (node shapes, Node Lists, ``openb:``) and workloads
                (Pod manifests, CSV, synthetic specs, ``openb:``)
- ``priorities`` pods' priorities from PriorityClasses, as admission gives them
- ``synthetic`` the seeded synthetic workload generator
- ``gangs``     pod groups: how a workload names them, what a replay keeps of them
- ``replay``    the event-driven replay of one (strategy, seed), with preemption
                if asked, pod groups placed together, and its metrics
- ``bound``     the MILP upper bound for small static workloads
- ``sweep``     strategies x seeds in worker processes, streamed to disk
- ``report``    the terminal table, CSV, JSON summary and plots
"""
