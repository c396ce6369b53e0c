"""Rotations, mesh extraction and mesh queries shared by training, refinement, export and evaluation."""
