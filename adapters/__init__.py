"""Backends: the helm and kubectl binaries, the Kubernetes and AWS clients, MySQL, local
processes, port-forwards and the target Temporal's clients, each behind one module, with one
error table per backend in `adapters/errors` deciding what is worth retrying.

Adapters are not activities: they hold no step logic and know nothing of workflows. The
activities (`activities/`, one module per step) and the operations (`operations/`) use them;
nothing here imports either."""
