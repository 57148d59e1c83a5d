# PASCAL VOC2007 test: synthetic (tests), real photos (demo), an extracted root, a local archive,
# or a download.
SOURCE = plan.data_source(config)

if SOURCE == "synthetic":

    rule make_demo_voc:
        output:
            devkit=directory(f"{DATA}/VOCdevkit"),
        log:
            f"{LOGS}/make_demo_voc.log",
        conda:
            ENV
        params:
            synthetic=config["voc"]["synthetic"],
            split=config["voc"]["split"],
        message:
            "Making a synthetic VOC-format dataset (offline demo)"
        script:
            "../scripts/make_demo_voc.py"

elif SOURCE == "photos":

    rule make_photo_voc:
        output:
            devkit=directory(f"{DATA}/VOCdevkit"),
        log:
            f"{LOGS}/make_photo_voc.log",
        conda:
            ENV
        params:
            split=config["voc"]["split"],
        message:
            "Building a VOC-format set of real photos from installed packages (offline demo)"
        script:
            "../scripts/make_photo_voc.py"

elif SOURCE in ("archive", "download"):

    if SOURCE == "download":

        rule fetch_voc:
            output:
                archive=f"{DATA}/VOCtest_06-Nov-2007.tar",
            log:
                f"{LOGS}/fetch_voc.log",
            conda:
                ENV
            params:
                urls=config["voc"]["urls"],
                md5=config["voc"]["md5"],
            message:
                "Downloading VOCtest_06-Nov-2007.tar (md5-checked)"
            script:
                "../scripts/fetch_voc.py"

    rule extract_voc:
        input:
            archive=(
                config["voc"]["archive"]
                if SOURCE == "archive"
                else f"{DATA}/VOCtest_06-Nov-2007.tar"
            ),
        output:
            devkit=directory(f"{DATA}/VOCdevkit"),
        log:
            f"{LOGS}/extract_voc.log",
        conda:
            ENV
        params:
            md5=config["voc"]["md5"],
        message:
            "Verifying and safely extracting {input.archive}"
        script:
            "../scripts/extract_voc.py"


rule check_voc:
    input:
        **({} if SOURCE == "root" else {"devkit": DEVKIT}),
    output:
        dataset=f"{DATA}/dataset.json",
    log:
        f"{LOGS}/check_voc.log",
    conda:
        ENV
    params:
        root=config["voc"]["root"],
        root_state=plan.root_state(config),
        split=config["voc"]["split"],
        synthetic=SOURCE == "synthetic",
    message:
        "Checking every annotation and JPEG ({params.split} split)"
    script:
        "../scripts/check_voc.py"


rule sample_speed_images:
    input:
        dataset=rules.check_voc.output.dataset,
    output:
        images=f"{DATA}/speed_images.txt",
    log:
        f"{LOGS}/sample_speed_images.log",
    conda:
        ENV
    params:
        images=config["speed"]["images"],
        seed=config["speed"]["seed"],
    script:
        "../scripts/sample_speed_images.py"
