"""Headless output: runs and the report's experiments to files, their progress, figures and summaries."""
