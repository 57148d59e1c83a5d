"""Export a detbench model to ONNX with MXNet's own exporter (``mxnet.onnx``) at opset 13.

The net is built exactly as a run builds it (:func:`nets.build_from_weights` from the spec's
``weights`` entry, hashes checked), with the eval NMS (:func:`nets.use_eval_nms`), hybridized,
run once at its export input shape and written with ``net.export``; MXNet's converter then turns
that symbol and its parameters into an ONNX graph, which ``onnx.checker.check_model`` checks.

Export input shape (batch 1, fixed): the model's eval size (SSD, YOLOv3, CenterNet, darknet:
``zoo`` ``eval.size`` squared); Faster R-CNN, whose eval inputs keep each image's aspect ratio,
its speed shape from ``zoo`` (600, 800). The batch axis is left symbolic
(``dynamic_input_shapes``), so a VOC run can feed batches; with a fixed batch axis of 1
(``--static-batch``) ONNX Runtime 1.32 fails to create a YOLOv3 session at every optimisation
level but ORT_DISABLE_ALL ("Attempt to replace the existing tensor" while constant folding).

Opset: MXNet 1.9.1's ``mx.onnx.export_model`` takes no opset argument and stamps the model with
the newest opset of the installed onnx (22 for onnx 1.17) although its translations are written
for opsets 12 and 13, so this module calls the same converter (``MXNetGraph.
create_onnx_graph_proto``) with ``opset_version=13`` and makes the model as ``export_model``
does, importing opset 13. ``mxnet.onnx`` needs an onnx release that still has
``onnx.mapping`` (onnx 1.17.0 works; 1.19 removed it).

NMS: MXNet's ``box_nms`` with ``id_index`` set and ``force_suppress=False`` (GluonCV's SSD and
YOLOv3, the darknet block) suppresses boxes only within a class. The exporter's
``_contrib_box_nms`` translation (``_op_translations_opset13.py``) emits one ONNX
``NonMaxSuppression`` over all boxes with a single score class and ignores ``id_index`` and
``force_suppress`` (it logs a warning), so the exported NMS is class-agnostic: a box can suppress
an overlapping box of another class. The record's ``nms`` says which applies.

BatchNorm: the exporter's translation ignores ``fix_gamma`` (true by default in MXNet's symbol
API, as in GluonCV's SSD feature expander), for which MXNet computes with gamma = 1 whatever the
parameter holds; trained weights hold 1 there, seeded ones do not, so those gammas are set to 1
before converting (the record's ``fix_gamma_batchnorms`` counts them).

An export failure (an operator without translation, an INT8 graph, a checker error) is a result:
the record says ``status: failed`` with the error, and the ``.onnx`` file is left empty.

    python -m detbench.runner export-onnx --model M --weights ENTRY.json --out M.onnx
        --record M.json
"""

import json
import os
import shutil
import tempfile
import time
import traceback

from detbench import zoo
from detbench.runner import environment, nets

OPSET = 13
INPUT_NAME = "data"
# The MXNet ops whose ONNX translation is one class-agnostic NonMaxSuppression.
NMS_OPS = ("_contrib_box_nms", "box_nms", "_contrib_box_non_maximum_suppression")
NMS_REASON = (
    "mxnet {} mx2onnx translates _contrib_box_nms to one ONNX NonMaxSuppression over all boxes "
    "(a single score class), ignoring id_index and force_suppress"
)


def export_shape(model):
    """(1, 3, height, width) of the export: the eval size, or Faster R-CNN's speed shape."""
    info = zoo.model_info(model)
    if info["family"] == zoo.FASTER_RCNN:
        height, width = nets.speed_shape(model, None)
    else:
        height = width = int(info["eval"]["size"])
    return (1, 3, int(height), int(width))


def output_names(symbol):
    """The ONNX names of the symbol's outputs, in MXNet's order (the exporter's own renaming:
    ``<node>_output`` -> ``<node>``, ``<node>_output<i>`` -> ``<node><i>``)."""
    import re

    names = []
    for name in symbol.list_outputs():
        if name.endswith("_output"):
            names.append(name[: -len("_output")])
        elif re.search(r"_output[0-9]$", name):
            names.append(name[: -len("_output0")] + name[-1])
        else:
            names.append(name)
    return names


def nms_fact(symbol_json):
    """What the export does to the NMS of the graph in ``symbol_json`` (a ``-symbol.json``):
    ``mxnet`` (per-class | class-agnostic | none), ``onnx``, ``changed`` and ``reason``."""
    with open(symbol_json) as handle:
        nodes = json.load(handle)["nodes"]
    kinds = set()
    for node in nodes:
        if node["op"] in NMS_OPS:
            attrs = node.get("attrs", {})
            per_class = int(attrs.get("id_index", "-1")) >= 0 and attrs.get(
                "force_suppress", "False"
            ) in ("False", "0", "false")
            kinds.add("per-class" if per_class else "class-agnostic")
    if not kinds:
        return {"mxnet": "none", "onnx": "none", "changed": False, "reason": "no box_nms in graph"}
    mxnet_kind = "per-class" if "per-class" in kinds else "class-agnostic"
    version = environment.package_versions().get("mxnet")
    return {
        "mxnet": mxnet_kind,
        "onnx": "class-agnostic",
        "changed": mxnet_kind != "class-agnostic",
        "reason": NMS_REASON.format(version),
    }


def fixed_gammas(symbol_json):
    """Names of the ``gamma`` inputs of the graph's BatchNorm nodes with ``fix_gamma`` (the
    symbol API's default, e.g. GluonCV's SSD feature expander): MXNet computes them with
    gamma = 1, whatever the parameter holds."""
    with open(symbol_json) as handle:
        nodes = json.load(handle)["nodes"]
    names = []
    for node in nodes:
        fixed = node.get("attrs", {}).get("fix_gamma", "True") in ("True", "true", "1")
        if node["op"] == "BatchNorm" and fixed:
            names.append(nodes[node["inputs"][1][0]]["name"])
    return sorted(names)


def _exporter_versions():
    versions = environment.package_versions()
    result = {"mxnet": versions.get("mxnet"), "onnx": None}
    try:
        import onnx

        result["onnx"] = onnx.__version__
    except ImportError:
        pass
    return result


def convert(symbol, params, shape, onnx_path, dynamic_batch=True):
    """MXNet's converter at opset 13 (see the module docstring), then ``check_model``; writes
    ``onnx_path``. ``dynamic_batch``: the input's batch, height and width are left symbolic, so
    one export serves a model's speed runs (``speed.size``) and its voc runs (eval size) with
    any batch."""
    import numpy as np
    import onnx
    from mxnet.onnx.mx2onnx._export_onnx import MXNetGraph
    from onnx import helper, mapping

    dynamic_shapes = [(None, shape[1], None, None)] if dynamic_batch else None
    graph = MXNetGraph().create_onnx_graph_proto(
        symbol,
        params,
        [tuple(shape)],
        [mapping.NP_TYPE_TO_TENSOR_TYPE[np.dtype(np.float32)]],
        opset_version=OPSET,
        dynamic=dynamic_batch,
        dynamic_input_shapes=dynamic_shapes,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    onnx.checker.check_model(model, full_check=True)
    with open(onnx_path, "wb") as handle:
        handle.write(model.SerializeToString())


def export_files(model, weights, onnx_path, work_dir, dynamic_batch=True):
    """Build ``model`` from ``weights`` (a spec ``weights`` entry) as a run does, export it to
    ``onnx_path``; returns the facts of the record (input, outputs, nms)."""
    import mxnet as mx

    ctx = mx.cpu()
    net = nets.build_from_weights(model, ctx, weights)
    nets.use_eval_nms(net)
    net.hybridize(static_alloc=True, static_shape=True)
    shape = export_shape(model)
    for out in net(mx.nd.zeros(shape, ctx=ctx)):
        out.wait_to_read()
    prefix = os.path.join(work_dir, "net")
    net.export(prefix, epoch=0)
    symbol_json = prefix + "-symbol.json"
    symbol, arg_params, aux_params = mx.model.load_checkpoint(prefix, 0)
    params = dict(arg_params)
    params.update(aux_params)
    fixed = fixed_gammas(symbol_json)
    for name in fixed:  # the exporter ignores fix_gamma: give it the gamma MXNet computes with
        params[name] = mx.nd.ones_like(params[name])
    nms = nms_fact(symbol_json)
    convert(symbol, params, shape, onnx_path, dynamic_batch)
    return {
        "input": {
            "name": INPUT_NAME,
            "shape": [None, shape[1], None, None] if dynamic_batch else list(shape),
        },
        "export_shape": list(shape),
        "outputs": output_names(symbol),
        "nms": nms,
        "fix_gamma_batchnorms": len(fixed),
    }


def _error_text(exc):
    """``Type: message``, without MXNet's native stack trace (host paths stay in the log)."""
    message = str(exc).split("\nStack trace:")[0].strip()
    return "{}: {}".format(type(exc).__name__, message)


def export(model, weights, onnx_path, record_path, dynamic_batch=True):
    """Export ``model`` to ``onnx_path`` and write its record to ``record_path`` (each written
    atomically); returns the record. A failed export leaves an empty ``onnx_path`` and a record
    with ``status: failed`` and the ``error``. ``dynamic_batch=False`` fixes the batch axis at 1
    (ONNX Runtime 1.32 then loads YOLOv3 only with graph optimisations off)."""
    record = {
        "model": model,
        "status": "failed",
        "error": None,
        "format": "onnx",
        "opset": OPSET,
        "path": onnx_path,
        "weights": {
            "source": weights.get("source"),
            "untrained": bool(weights.get("untrained")),
            "sha256": weights.get("sha256"),
            "path": weights.get("path"),
        },
        "exporter": _exporter_versions(),
    }
    tmp_onnx = onnx_path + ".tmp"
    work_dir = tempfile.mkdtemp(prefix="detbench-onnx-")
    start = time.time()
    try:
        record.update(export_files(model, weights, tmp_onnx, work_dir, dynamic_batch))
        record["status"] = "ok"
    except Exception as exc:  # an export failure is a result, recorded (DESIGN §5)
        traceback.print_exc()
        record["error"] = _error_text(exc)
        with open(tmp_onnx, "wb"):
            pass  # the workflow's output exists, empty; the record says why
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    record["export_s"] = round(time.time() - start, 3)
    record["sha256"] = nets.file_digest(tmp_onnx)
    record["size_bytes"] = os.path.getsize(tmp_onnx)
    os.replace(tmp_onnx, onnx_path)
    tmp_record = record_path + ".tmp"
    with open(tmp_record, "w") as handle:
        json.dump(record, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.replace(tmp_record, record_path)
    return record
