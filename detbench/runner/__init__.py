"""The device runner: the only code that imports mxnet/gluoncv (DESIGN §3).

It must stay importable on Python 3.6 with MXNet 1.6.0 + GluonCV 0.8.0: no dataclasses, no walrus,
no ``from __future__ import annotations``; numpy, the standard library and optional
psutil / jtop / pynvml only. It reads one self-contained spec file and writes plain files into its
run directory; it never talks to MLflow.
"""
