"""Print a short tree of each profile in a profiles.jsonl file.

python examples/show_profiles.py out/profiles.jsonl

Names the model wrote are shown as they are; names grounding replaced by the
group's computed label are marked with a trailing ``*``.
"""

import sys
from collections import Counter

from interests.profile.store import read_profiles


def _name(node):
    return node.name + ("*" if node.name_source == "computed" else "")


def _items(ids, n=4):
    return ", ".join(ids[:n]) + (f" +{len(ids) - n} more" if len(ids) > n else "")


if __name__ == "__main__":
    profiles = read_profiles(sys.argv[1] if len(sys.argv) > 1 else "out/profiles.jsonl")
    sources = Counter()
    for p in profiles:
        trends = {t.domain: t.trend for t in p.time_patterns.by_domain}
        print(f"{p.user_id}: {p.summary}")
        for d in p.domains:
            trend = trends.get(d.name, "steady")
            rating = "" if d.sentiment.rating is None else f", rating {d.sentiment.rating:+.2f}"
            print(f"  {_name(d)} ({d.weight:.0%}{rating}{'' if trend == 'steady' else ', ' + trend})")
            sources[d.name_source] += 1
            for t in d.topics:
                sources[t.name_source] += 1
                attrs = ", ".join(f"{a.name}={a.value}" for a in t.attributes)
                line = f"    {_name(t)} ({t.weight:.0%}): {_items(t.item_ids)}"
                print(line + (f" [{attrs}]" if attrs else ""))
    named = sources["model"] + sources[None]
    print(f"{len(profiles)} profiles; {named} of {sum(sources.values())} names by the model (* computed)")
