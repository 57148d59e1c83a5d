"""INT8 quantization of a detector with MXNet's ``quantize_net`` (``quantized`` weights).

``python -m detbench.runner.quantize --model M --params FP32.params [--cfg M.cfg] --devkit
VOCdevkit --images IDS.txt --out OUT.params`` loads the FP32 weights (a GluonCV model's
``.params``, or a darknet model's ``.weights`` with its ``--cfg``), calibrates on the first
``--count`` images of IDS.txt (``calib_mode`` naive: min/max of each layer's output) passed
through the model's speed-run transform (GluonCV's ``ResizeTransform`` at ``--size``; darknet's
plain resize at its registered 320 x 320), and exports the INT8 net as ``OUT.params`` +
``OUT-symbol.json`` (``SymbolBlock.export``), which ``nets.build_net(symbol_path=...)`` loads.
A darknet model's yolo-head convolutions stay FP32 (:func:`darknet_fp32_layers`).

As GluonCV's own ``scripts/detection/ssd/eval_ssd.py --calibration``: the quantization runs on
the CPU (MXNet's INT8 CPU kernels are MKL-DNN/oneDNN ones), ``flatten`` and ``concat`` layers stay
FP32 (the box decoder's inputs; an untrained net's infinite values there cannot be calibrated),
and the eval NMS is set first, so it is part of the exported graph. On a build without MKL-DNN
(the MXNet 1.6 pip wheel) quantization fails; the error is written to ``--error-out`` and the
exit status is 3, so the fetch step can record it and the runs report it.
"""

import argparse
import os
import sys
import traceback

from detbench import zoo
from detbench.contract import EXIT_QUANTIZE_FAILED
from detbench.runner import environment, nets

EXCLUDE_LAYERS_MATCH = ("flatten", "concat")


def symbol_path_for(params_path):
    """``weights/quantized/M.params`` -> ``weights/quantized/M-symbol.json``."""
    stem = params_path[: -len(".params")] if params_path.endswith(".params") else params_path
    return stem + "-symbol.json"


def calibration_batch(model, images, size):
    """``images`` (HWC uint8 NDArrays) through the model's speed-run transform: one NCHW array."""
    import mxnet as mx

    transform = nets.speed_transform(model, *nets.speed_shape(model, size))
    return mx.nd.stack(*[transform(image)[0] for image in images])


def quantize(net, calib, calib_mode="naive", exclude=EXCLUDE_LAYERS_MATCH):
    """INT8 ``SymbolBlock`` of the FP32 HybridBlock ``net`` on the CPU, calibrated on ``calib``
    (NCHW NDArray, one image per calibration batch); layers whose names contain one of
    ``exclude`` stay FP32."""
    import mxnet as mx
    from mxnet.contrib import quantization

    return quantization.quantize_net(
        net,
        quantized_dtype="auto",
        exclude_layers_match=list(exclude),
        calib_data=mx.io.NDArrayIter(data=calib, batch_size=1),
        calib_mode=calib_mode,
        num_calib_examples=int(calib.shape[0]),
        ctx=mx.cpu(),
    )


def export(qnet, sample, out_params):
    """Write ``out_params`` and its ``-symbol.json`` (each atomically); returns the symbol path.

    ``sample``: one NCHW input. MXNet 1.9 exports only the parameters its cached graph has
    bound, so the net runs once first (before that, it writes an empty ``.params``)."""
    qnet.hybridize()
    for out in qnet(sample):
        out.wait_to_read()
    symbol_path = symbol_path_for(out_params)
    prefix = out_params + ".tmp"
    qnet.export(prefix, epoch=0)
    os.replace(prefix + "-symbol.json", symbol_path)
    os.replace(prefix + "-0000.params", out_params)
    return symbol_path


def darknet_fp32_layers(net):
    """Name fragments of the layers of a darknet net that stay FP32: the convolutions feeding
    its ``[yolo]`` layers (raw box offsets and class logits, which the decoder passes through
    ``exp`` and ``sigmoid``)."""
    return ["_conv{}_".format(spec["index"] - 1) for spec in net.specs if spec["type"] == "yolo"]


def quantize_to_files(
    model, params_path, devkit, image_ids, size, out_params, calib_mode, cfg_path=None,
    quantize_heads=False,
):  # fmt: skip
    """Quantize ``model`` (an ``_int8`` name means its FP32 base) with the FP32 weights at
    ``params_path`` (a darknet model: its ``.weights``, with ``cfg_path``), calibrated on
    ``image_ids`` of ``devkit``; returns the symbol path. A darknet model's yolo-head
    convolutions stay FP32 unless ``quantize_heads``."""
    import mxnet as mx

    from detbench.runner.run import image_reader

    fp32 = zoo.fp32_name(model)
    exclude = list(EXCLUDE_LAYERS_MATCH)
    if zoo.is_darknet(fp32):
        from detbench.runner import darknet

        if not cfg_path:
            raise ValueError("{}: a darknet model needs its .cfg (--cfg)".format(model))
        net = darknet.load_darknet(cfg_path, params_path, mx.cpu())
        exclude += [] if quantize_heads else darknet_fp32_layers(net)
    else:
        net = nets.build_net(fp32, mx.cpu(), params_path=params_path)
    nets.use_eval_nms(net)
    read = image_reader(devkit)
    calib = calibration_batch(fp32, [read(image_id) for image_id in image_ids], size)
    return export(quantize(net, calib, calib_mode, exclude), calib[:1], out_params)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m detbench.runner.quantize", description=__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--params", required=True, help="FP32 weights (.params) of the model")
    parser.add_argument("--cfg", help="a darknet model's .cfg (--params: its .weights)")
    parser.add_argument("--devkit", required=True, help="VOCdevkit directory of the images")
    parser.add_argument("--images", required=True, help="text file of image ids")
    parser.add_argument("--count", type=int, default=8, help="calibration images (first N ids)")
    parser.add_argument("--size", type=int, default=512, help="speed-run input size")
    parser.add_argument("--calib-mode", default="naive", choices=["naive", "entropy"])
    parser.add_argument("--out", required=True, help="INT8 .params; -symbol.json beside it")
    parser.add_argument("--error-out", help="file that receives the error if quantizing fails")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    environment.configure_threads(args.threads)
    with open(args.images) as handle:
        image_ids = handle.read().split()[: args.count]
    try:
        if not image_ids:
            raise ValueError("{}: no image ids to calibrate on".format(args.images))
        symbol_path = quantize_to_files(
            args.model, args.params, args.devkit, image_ids, args.size, args.out,
            args.calib_mode, cfg_path=args.cfg,
        )  # fmt: skip
    except Exception as exc:  # recorded for the runs, which report it as their failure
        traceback.print_exc()
        if args.error_out:  # MXNet's native stack trace (host paths) stays in the log only
            message = str(exc).split("\nStack trace:")[0].strip()
            with open(args.error_out, "w") as handle:
                handle.write("{}: {}\n".format(type(exc).__name__, message))
        return EXIT_QUANTIZE_FAILED
    sys.stderr.write("quantized {} -> {} + {}\n".format(args.model, args.out, symbol_path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
