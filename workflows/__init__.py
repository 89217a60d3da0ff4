"""Workflow code: I/O-free, deterministic, replayed.

Replay rule: this code replays histories written by earlier releases of the tool.
Anything that may change between releases (version tables, a plan, a chart's content) is
computed in an activity and read from its recorded result; a change to the commands a run
emits (another activity, another order, a timer, steps run at once) goes behind
`workflow.patched("<name>")` with the old path kept for runs without the marker, and
tests/histories keeps a history recorded by the previous release for the replay test
(tests/histories/record_histories.py records new ones under new names; old ones are never
re-recorded).
"""
