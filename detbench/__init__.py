"""detbench: reproducible object-detection benchmarks on edge devices and workstations.

Imports nothing on purpose: ``python -m detbench.runner`` must load on the seed device stack
(Python 3.6, MXNet 1.6.0, GluonCV 0.8.0) without the orchestrator's dependencies.
"""
