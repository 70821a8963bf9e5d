"""Regenerate the example logs in examples/logs/ (a synthetic shop with planted interests).

    python examples/make_logs.py

24 users over a catalogue of 270 items in 6 domains (films, coffee, trail
running, jazz, board games, baking), 18 topics with attributes, planted
ratings, evening/weekend rhythms and a fading and a rising domain for half
of the users. ``truth.json`` holds what was planted.
"""

from pathlib import Path

from interests.synthetic import generate, write_logs

if __name__ == "__main__":
    paths = write_logs(generate(n_users=24, seed=0), Path(__file__).parent / "logs")
    for kind, path in paths.items():
        print(f"{kind}: {path}")
