#!/usr/bin/env python3
"""Prints the scalars of the event files in RUN_DIR as TensorBoard reads them (EventAccumulator):
one line per value, "TAG STEP VALUE WALL_TIME", sorted by tag then step."""
import sys

from tensorboard.backend.event_processing import event_accumulator

acc = event_accumulator.EventAccumulator(sys.argv[1], size_guidance={"scalars": 0})
acc.Reload()
for tag in sorted(acc.Tags()["scalars"]):
    for e in acc.Scalars(tag):
        print("%s %d %.9g %.6f" % (tag, e.step, e.value, e.wall_time))
