"""The accuracy suite: a fixed, versioned list of synthetic clips run through the whole pipeline.

``hold-suite run OUT`` synthesises every clip of a suite file (``configs/suites/``), runs
preprocess → train → export → eval on each with one training preset, one clip at a time, and writes one
JSON per clip plus a summary (JSON and a markdown table) with the median and worst clip. Finished
steps and clips are kept, so an interrupted run resumes where it stopped.
"""
