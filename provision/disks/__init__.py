"""Disk work for the disks and mount stages: layout as data, then the tools that apply it."""
