"""Package discovery, which pyproject.toml alone cannot express for this layout.

Every package under ``src/`` is found, and ``cli/`` and ``prompts/`` (top-level
folders, installed as ``interests.cli`` and ``interests.prompts``) are added with
their own subpackages, so a new subpackage cannot silently drop out of the wheel.
Everything else is declared in pyproject.toml.
"""

from setuptools import find_packages, setup


def under(folder: str, prefix: str) -> list[str]:
    return [prefix] + [f"{prefix}.{p}" for p in find_packages(folder)]


setup(packages=find_packages("src") + under("cli", "interests.cli") + under("prompts", "interests.prompts"))
