"""The report stage: aggregate run directories into ``summary.csv`` and draw the study's figures."""
