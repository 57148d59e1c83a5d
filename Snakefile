# detbench: object-detection benchmarks on edge devices and workstations (see README.md).
#   snakemake --cores 1 all                              the full seed study (config/config.yaml)
#   snakemake all --cores 2 --configfile config/demo.yaml  the offline demo
from snakemake.utils import min_version, validate

from detbench import plan

min_version("9.0")


configfile: "config/config.yaml"


validate(config, "config/schema.yaml")
plan.check_config(config)


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/models.smk"
include: "rules/benchmark.smk"
include: "rules/evaluate.smk"
include: "rules/track.smk"
include: "rules/report.smk"


# A device's runs stay on this workstation when an executor plugin sends the other jobs to a
# cluster (README, "Workstation jobs on a cluster").
localrules:
    speed,
    voc,


rule all:
    default_target: True
    input:
        all_targets(),
