"""Package discovery, which pyproject.toml alone cannot express for this layout.

Every package under ``src/`` is found, and ``cli/`` and ``prompts/`` (top-level
folders, installed as ``interests.cli`` and ``interests.prompts``) are added with
their own subpackages, so a new subpackage cannot silently drop out of the wheel.
The packages in :data:`SOURCE_ONLY` are test, example and benchmark fixtures: they
stay out of the wheel and are importable from a checkout (the editable install maps
``interests`` to ``src/interests``). Everything else is declared in pyproject.toml.
"""

from setuptools import find_namespace_packages, find_packages, setup


def under(folder: str, prefix: str) -> list[str]:
    return [prefix] + [f"{prefix}.{p}" for p in find_packages(folder)]


# namespace discovery under src/ also names the data folders (report/templates), which setuptools
# otherwise warns about; caches are not packages
#: planted logs and profiles, scores against planted truth (tests, examples/, bench/, docs)
SOURCE_ONLY = ["interests.synthetic", "interests.synthetic.*"]
src = find_namespace_packages(
    "src", include=["interests", "interests.*"], exclude=["*.__pycache__", *SOURCE_ONLY]
)
setup(packages=src + under("cli", "interests.cli") + under("prompts", "interests.prompts"))
