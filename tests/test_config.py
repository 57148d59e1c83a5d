"""config/*.yaml against config/schema.yaml, and detbench.plan's config checks."""

from __future__ import annotations

import copy

import pytest
import yaml
from helpers import REPO
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from detbench import plan

SCHEMA = REPO / "config/schema.yaml"


def load(name: str) -> dict:
    config = yaml.safe_load((REPO / "config" / name).read_text())
    validate(config, str(SCHEMA))
    return config


def schema_keys(schema: dict, prefix: str = "") -> set[str]:
    keys = set()
    for name, sub in schema.get("properties", {}).items():
        keys.add(prefix + name)
        keys |= schema_keys(sub, f"{prefix}{name}.")
    return keys


def test_shipped_configs_validate_and_check():
    for name in ("config.yaml", "demo.yaml"):
        plan.check_config(load(name))


def test_full_config_documents_every_schema_key():
    """config.yaml doubles as documentation: it sets every key the schema knows (top two levels)."""
    schema = yaml.safe_load(SCHEMA.read_text())
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    shipped = {k for k in schema_keys(schema) if k.count(".") <= 1}
    present = set(config) | {
        f"{k}.{s}" for k, v in config.items() if isinstance(v, dict) for s in v
    }
    optional = {"overrides", "voc.synthetic", "voc.split", "weights.seed", "speed.seed"}
    assert shipped - present - optional == set()


def test_every_schema_key_has_a_description_and_default():
    schema = yaml.safe_load(SCHEMA.read_text())

    def walk(node, path):
        for name, sub in node.get("properties", {}).items():
            assert "description" in sub, f"{path}{name}: no description"
            if path.count(".") < 1 and name not in ("synthetic",):
                assert "default" in sub, f"{path}{name}: no default"
            walk(sub, f"{path}{name}.")

    walk(schema, "")


def test_misspelt_key_fails_validation():
    config = yaml.safe_load((REPO / "config/demo.yaml").read_text())
    config["speed"]["imgaes"] = 10
    with pytest.raises(WorkflowError, match="imgaes"):
        validate(config, str(SCHEMA))


def test_unknown_model_lists_the_known_names():
    config = load("demo.yaml")
    config["models"] = ["yolo9_voc"]
    with pytest.raises(plan.ConfigError, match="yolo9_voc.*ssd_512_resnet50_v1_voc"):
        plan.check_config(config)


def test_overrides_apply_to_one_model_only():
    config = load("demo.yaml")
    config["overrides"] = {"yolo3_mobilenet1.0_voc": {"voc_run": {"batch": 2}}}
    plan.check_config(config)
    assert plan.settings(config, "yolo3_mobilenet1.0_voc", "voc_run")["batch"] == 2
    assert plan.settings(config, "ssd_512_mobilenet1.0_voc", "voc_run")["batch"] == 8
    stray = copy.deepcopy(config)
    stray["overrides"] = {"yolo3_darknet53_voc": {"speed": {"size": 416}}}
    with pytest.raises(plan.ConfigError, match="not listed under models"):
        plan.check_config(stray)


def test_data_source_precedence_and_run_dirs():
    config = load("config.yaml")
    assert plan.data_source(config) == "download"
    config["voc"]["archive"] = "/data/VOCtest_06-Nov-2007.tar"
    assert plan.data_source(config) == "archive"
    config["voc"]["root"] = "/data/VOCdevkit"
    assert plan.data_source(config) == "root" and plan.devkit(config) == "/data/VOCdevkit"
    dirs = plan.run_dirs(config)
    assert len(dirs) == 4 * 2 * 2 + 4 * 2 and dirs == sorted(dirs[:16]) + sorted(dirs[16:])
