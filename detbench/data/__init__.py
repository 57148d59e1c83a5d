"""PASCAL VOC data: download, verification, safe extraction, strict parsing, synthetic sets.

Modules: :mod:`~detbench.data.download` (``fetch_voc``), :mod:`~detbench.data.extract`
(``extract_voc_tar``), :mod:`~detbench.data.voc` (typed strict parsing),
:mod:`~detbench.data.check` (``check_dataset``, ``fingerprint``), :mod:`~detbench.data.sample`
(``sample_speed_images``), :mod:`~detbench.data.synthetic` (``make_synthetic_voc``) and
:mod:`~detbench.data.errors` (the ``DataError`` hierarchy). Nothing is imported here, so
importing one module does not pull in the others' dependencies.
"""
