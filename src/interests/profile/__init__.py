"""The profile stage: from a user's events to a grounded interest profile.

signals (what the data decides) -> item_groups and skeleton (the hierarchy's
structure) -> prompting and draft (what the model is asked and may answer) ->
grounding (words checked against the events) -> store (one line a user,
resumable). ``extract`` runs the stage over many users, ``update`` keeps its
output current, ``privacy`` and ``redact`` protect what goes in and out.
"""
