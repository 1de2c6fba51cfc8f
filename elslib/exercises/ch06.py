"""Exercises of chapter 06 (filled in with the chapter)."""

from __future__ import annotations

from .framework import Exercise

EXERCISES: dict[str, Exercise] = {}
