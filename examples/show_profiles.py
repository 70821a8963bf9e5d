"""Print a short tree of each profile in a profiles.jsonl file.

python examples/show_profiles.py out/profiles.jsonl
"""

import sys

from interests.store import read_profiles

if __name__ == "__main__":
    profiles = read_profiles(sys.argv[1] if len(sys.argv) > 1 else "out/profiles.jsonl")
    for p in profiles:
        print(f"{p.user_id}: {p.summary}")
        for d in p.domains:
            print(f"  {d.name} ({d.weight:.0%}, rating sentiment {d.sentiment.rating})")
            for t in d.topics:
                attrs = ", ".join(f"{a.name}={a.value}" for a in t.attributes)
                print(
                    f"    {t.name} ({t.weight:.0%}): items {', '.join(t.item_ids)}"
                    + (f" [{attrs}]" if attrs else "")
                )
    print(f"{len(profiles)} profiles")
