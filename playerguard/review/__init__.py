"""The review console: `playerguard review` serves the queue of flags and one page per flag, where a person
confirms or dismisses a flag with the evidence in front of them. Verdicts go through the outbox's own
`review` and the same label export as `flags review`, so they feed the next training run.
"""
