"""Annotator review: people's verdicts on a model's detections, kept in one SQLite file per review.

:mod:`.store` records the verdicts (durable when each call returns), :mod:`.compare` sets two annotators'
files side by side, :mod:`.export` writes the corrected boxes as new ground truth and the summary.
"""
